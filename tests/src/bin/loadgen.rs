//! Load generator: drives Redact or Assess against a real agent over gRPC for a bounded time and
//! reports throughput, latency percentiles and peak memory.
//!
//!     cargo run --release -p readi-tests --bin loadgen -- --rpc assess --seconds 20 --concurrency 8
//!
//! Without --addr it starts an agent in this process on a loopback port with a temporary store
//! (peak RSS then covers agent and client together).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use readi_proto::agent::v1::{
    AssessRequest, RedactRequest, Role, Turn, gateway_client::GatewayClient,
};
use tonic::transport::Channel;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Rpc {
    Redact,
    Assess,
}

#[derive(Debug, Parser)]
#[command(about = "Drive Redact or Assess against a readi agent and report latency")]
struct Args {
    /// Which RPC to call.
    #[arg(long, value_enum, default_value = "assess")]
    rpc: Rpc,
    /// An agent already running; otherwise one is started in-process.
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// How long to run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Calls in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Bytes of text per call (a clinical note or a chat history).
    #[arg(long, default_value_t = 2048)]
    size: usize,
}

const NOTE: &str = "Pt is a 34 y/o F seen for f/u of MDD. Reports low mood x2 wks, poor sleep, \
decreased appetite. Denies SI/HI. Hx of cutting, none since 2019. Brother died by suicide in 2018. \
Lives with partner Jordan Reyes at 42 Elm St, Springfield; phone 617-555-0142. Continue sertraline \
100 mg qd, f/u 4 wks with Dr. Patel. Pt states she sometimes wishes she could sleep and not wake up, \
no plan or intent. Safety plan reviewed; pt agrees to call 988 if thoughts worsen. ";

fn text(size: usize) -> String {
    let mut t = String::with_capacity(size + NOTE.len());
    while t.len() < size {
        t.push_str(NOTE);
    }
    t.truncate(t.floor_char_boundary(size));
    t
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _dir;
    let addr = match args.addr {
        Some(a) => a,
        None => {
            let dir = tempfile::tempdir()?;
            let mut config = readi_agent::Config::default();
            config.storage.data_dir = dir.path().join("data");
            config.log.level = "warn".into();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            tokio::spawn(readi_agent::run(listener, config, std::future::pending()));
            _dir = dir;
            addr
        }
    };
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    let body = Arc::new(text(args.size));
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let mut tasks = Vec::new();
    for worker in 0..args.concurrency {
        let mut client = GatewayClient::new(channel.clone());
        let body = Arc::clone(&body);
        let rpc = args.rpc;
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let session = format!("load-{worker}-{}", n % 50);
                let t = Instant::now();
                let ok = match rpc {
                    Rpc::Redact => client
                        .redact(RedactRequest {
                            text: body.to_string(),
                            app_id: "loadgen".into(),
                            session_id: session,
                            style: 0,
                        })
                        .await
                        .is_ok(),
                    Rpc::Assess => client
                        .assess(AssessRequest {
                            app_id: "loadgen".into(),
                            session_id: session,
                            input: vec![Turn {
                                role: Role::Note as i32,
                                text: body.to_string(),
                            }],
                            ..Default::default()
                        })
                        .await
                        .is_ok(),
                };
                lat.push(t.elapsed().as_micros() as u64);
                errors += u64::from(!ok);
            }
            (lat, errors)
        }));
    }
    let start = Instant::now();
    let mut lat = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await?;
        lat.extend(l);
        errors += e;
    }
    let elapsed = start.elapsed().as_secs_f64().max(1e-9);
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)] as f64 / 1000.0;
    let calls = lat.len() as f64;
    println!(
        "rpc={:?} size={}B concurrency={} seconds={}",
        args.rpc, args.size, args.concurrency, args.seconds
    );
    println!(
        "calls={} errors={} throughput={:.0} calls/s ({:.1} MB/s of text)",
        lat.len(),
        errors,
        calls / elapsed,
        calls * args.size as f64 / elapsed / 1e6
    );
    println!(
        "latency ms: p50={:.2} p99={:.2} p999={:.2} max={:.2}",
        pct(0.50),
        pct(0.99),
        pct(0.999),
        pct(1.0)
    );
    if let Some(kib) = peak_rss_kib() {
        println!("peak RSS: {:.1} MiB", kib as f64 / 1024.0);
    }
    anyhow::ensure!(errors == 0, "{errors} calls failed");
    Ok(())
}
