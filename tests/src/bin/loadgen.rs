//! Load generator: drives Redact, Assess or StreamRedact against a real agent over gRPC, or chat
//! completions through its OpenAI-compatible proxy, for a bounded time and reports throughput,
//! latency percentiles and peak memory.
//!
//!     cargo run --release -p readi-tests --bin loadgen -- --rpc assess --seconds 20 --concurrency 8
//!     cargo run --release -p readi-tests --bin loadgen -- --rpc proxy --seconds 10 --concurrency 4
//!
//! `stream` sends each text as a live transcript in 128-byte chunks; `proxy` runs an in-process
//! upstream stub and reports the latency the proxy adds over calling the stub directly, and the
//! latency it adds to the first streamed token.
//!
//! Without --addr it starts an agent in this process on a loopback port with a temporary store
//! (peak RSS then covers agent and client together).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use readi_proto::agent::v1::{
    AssessRequest, RedactRequest, Role, TranscriptChunk, Turn, gateway_client::GatewayClient,
};
use tonic::transport::Channel;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Rpc {
    Redact,
    Assess,
    Stream,
    Proxy,
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
    /// Sessions each worker cycles through; 0 makes every call a new session.
    #[arg(long, default_value_t = 50)]
    sessions: u64,
    /// Calls per second over all workers (paced, each worker its share); 0 sends as fast as the
    /// agent answers.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// The in-process agent's page cache (storage.cache_mib).
    #[arg(long, default_value_t = readi_common::embedded::DEFAULT_CACHE_MIB)]
    cache_mib: u64,
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

/// A memory figure of this process from /proc/self/status, in KiB (`VmHWM` peak, `VmRSS` now).
fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
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
            // A load run measures capacity, not the per-caller rate limit.
            config.limits.requests_per_second = 0;
            config.storage.cache_mib = args.cache_mib;
            if matches!(args.rpc, Rpc::Proxy) {
                let upstream = stub::start().await?;
                // A free port, so the client knows where the proxy listens.
                let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
                let proxy_addr = probe.local_addr()?;
                drop(probe);
                config.proxy.listen = proxy_addr.to_string();
                PROXY_ADDR.set(proxy_addr).ok();
                config.proxy.upstream_url = format!("http://{upstream}");
                config.proxy.default_app = Some("loadgen".into());
                PROXY_UPSTREAM.set(upstream).ok();
            }
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            tokio::spawn(readi_agent::run(listener, config, std::future::pending()));
            _dir = dir;
            addr
        }
    };
    if matches!(args.rpc, Rpc::Proxy) {
        return proxy::run(&args).await;
    }
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
        let sessions = args.sessions;
        // Each worker's share of the rate, as a fixed schedule (missed slots are not made up).
        let pace = (args.rate > 0).then(|| {
            let mut every = tokio::time::interval(Duration::from_secs_f64(
                args.concurrency as f64 / args.rate as f64,
            ));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            every
        });
        tasks.push(tokio::spawn(async move {
            let mut pace = pace;
            let mut lat = Histogram::default();
            let mut errors = 0u64;
            let mut n = 0u64;
            while Instant::now() < deadline {
                if let Some(p) = pace.as_mut() {
                    p.tick().await;
                }
                n += 1;
                // Sessions come back (a clinician's conversation) or, with --sessions 0, never do.
                let session = match sessions {
                    0 => format!("load-{worker}-{n}"),
                    k => format!("load-{worker}-{}", n % k),
                };
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
                    Rpc::Stream => {
                        let chunks: Vec<TranscriptChunk> = body
                            .as_bytes()
                            .chunks(128)
                            .enumerate()
                            .map(|(i, c)| TranscriptChunk {
                                app_id: if i == 0 {
                                    "loadgen".into()
                                } else {
                                    String::new()
                                },
                                session_id: if i == 0 {
                                    session.clone()
                                } else {
                                    String::new()
                                },
                                text: String::from_utf8_lossy(c).into_owned(),
                                flush: false,
                            })
                            .collect();
                        match client.stream_redact(tokio_stream::iter(chunks)).await {
                            Ok(r) => {
                                let mut out = r.into_inner();
                                let mut ok = true;
                                loop {
                                    match out.message().await {
                                        Ok(Some(_)) => {}
                                        Ok(None) => break,
                                        Err(_) => {
                                            ok = false;
                                            break;
                                        }
                                    }
                                }
                                ok
                            }
                            Err(_) => false,
                        }
                    }
                    Rpc::Proxy => unreachable!("handled above"),
                };
                lat.record(t.elapsed().as_micros() as u64);
                errors += u64::from(!ok);
            }
            (lat, errors)
        }));
    }
    let start = Instant::now();
    let sampler = tokio::spawn(sample_rss(args.seconds));
    let mut lat = Histogram::default();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await?;
        lat.merge(&l);
        errors += e;
    }
    let elapsed = start.elapsed().as_secs_f64().max(1e-9);
    let pct = |p: f64| lat.quantile(p) as f64 / 1000.0;
    let calls = lat.count as f64;
    println!(
        "rpc={:?} size={}B concurrency={} seconds={} rate={}",
        args.rpc,
        args.size,
        args.concurrency,
        args.seconds,
        if args.rate == 0 {
            "open".to_owned()
        } else {
            format!("{}/s", args.rate)
        }
    );
    println!(
        "calls={} errors={} throughput={:.0} calls/s ({:.1} MB/s of text)",
        lat.count,
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
    if let Some(kib) = status_kib("VmHWM") {
        println!("peak RSS: {:.1} MiB", kib as f64 / 1024.0);
    }
    let samples = sampler.await?;
    if samples.len() >= 4 {
        // Memory is flat when the last quarter of the run sits where the second quarter did.
        let q = samples.len() / 4;
        let mean = |s: &[u64]| s.iter().sum::<u64>() as f64 / s.len() as f64 / 1024.0;
        println!(
            "RSS over the run (MiB): {}",
            samples
                .iter()
                .map(|k| format!("{:.0}", *k as f64 / 1024.0))
                .collect::<Vec<_>>()
                .join(" ")
        );
        println!(
            "RSS second quarter {:.1} MiB, last quarter {:.1} MiB",
            mean(&samples[q..2 * q]),
            mean(&samples[samples.len() - q..])
        );
    }
    anyhow::ensure!(errors == 0, "{errors} calls failed");
    Ok(())
}

/// Resident memory, sampled twenty times over the run (KiB).
async fn sample_rss(seconds: u64) -> Vec<u64> {
    let every = Duration::from_millis((seconds * 1000 / 20).max(100));
    let mut out = Vec::new();
    for _ in 0..20 {
        tokio::time::sleep(every).await;
        if let Some(kib) = status_kib("VmRSS") {
            out.push(kib);
        }
    }
    out
}

/// Latencies in 10 µs buckets up to 1 s (the last bucket holds anything slower), so a long run's
/// memory stays flat and is the agent's, not the recorder's.
#[derive(Clone)]
struct Histogram {
    buckets: Vec<u64>,
    count: u64,
    max: u64,
}

const BUCKET_US: u64 = 10;
const BUCKETS: usize = 100_000;

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: vec![0; BUCKETS],
            count: 0,
            max: 0,
        }
    }
}

impl Histogram {
    fn record(&mut self, us: u64) {
        self.buckets[((us / BUCKET_US) as usize).min(BUCKETS - 1)] += 1;
        self.count += 1;
        self.max = self.max.max(us);
    }

    fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.count += other.count;
        self.max = self.max.max(other.max);
    }

    /// The latency at quantile `q` (µs, the upper edge of its bucket; the maximum at 1.0).
    fn quantile(&self, q: f64) -> u64 {
        if q >= 1.0 || self.count == 0 {
            return self.max;
        }
        let rank = ((self.count as f64 * q) as u64).min(self.count - 1);
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen > rank {
                return ((i as u64 + 1) * BUCKET_US).min(self.max);
            }
        }
        self.max
    }
}

/// The upstream the in-process agent's proxy forwards to.
static PROXY_UPSTREAM: std::sync::OnceLock<SocketAddr> = std::sync::OnceLock::new();

/// Where the in-process agent's proxy listens.
static PROXY_ADDR: std::sync::OnceLock<SocketAddr> = std::sync::OnceLock::new();

fn percentile(lat: &mut [u64], p: f64) -> f64 {
    lat.sort_unstable();
    if lat.is_empty() {
        return 0.0;
    }
    lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)] as f64 / 1000.0
}

/// A minimal OpenAI-compatible upstream: answers at once, echoing the last message, or streams twenty
/// events.
mod stub {
    use std::convert::Infallible;
    use std::net::SocketAddr;

    use bytes::Bytes;
    use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
    use hyper::body::Frame;

    type Body = BoxBody<Bytes, Infallible>;

    async fn answer(
        req: hyper::Request<hyper::body::Incoming>,
    ) -> Result<hyper::Response<Body>, Infallible> {
        let body = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let last = v["messages"]
            .as_array()
            .and_then(|m| m.last())
            .and_then(|m| m["content"].as_str())
            .unwrap_or("")
            .chars()
            .take(200)
            .collect::<String>();
        if v["stream"].as_bool().unwrap_or(false) {
            let events: Vec<Result<Frame<Bytes>, Infallible>> = (0..20)
                .map(|i| {
                    let ev = serde_json::json!({"choices": [{"index": 0, "delta": {"content": format!("word{i} ")}}]});
                    Ok(Frame::data(Bytes::from(format!("data: {ev}\n\n"))))
                })
                .chain(std::iter::once(Ok(Frame::data(Bytes::from_static(b"data: [DONE]\n\n")))))
                .collect();
            let body = StreamBody::new(tokio_stream::iter(events)).boxed();
            return Ok(hyper::Response::builder()
                .header("content-type", "text/event-stream")
                .body(body)
                .expect("response"));
        }
        let reply = serde_json::json!({
            "choices": [{"index": 0, "message": {"role": "assistant", "content": format!("You said: {last}")}}],
            "usage": {"total_tokens": 50}
        });
        Ok(hyper::Response::builder()
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(reply.to_string())).boxed())
            .expect("response"))
    }

    pub(crate) async fn start() -> anyhow::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let _ = conn.set_nodelay(true);
                tokio::spawn(async move {
                    let io = hyper_util::rt::TokioIo::new(conn);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, hyper::service::service_fn(answer))
                        .await;
                });
            }
        });
        Ok(addr)
    }
}

/// Proxy overhead: the same chat completions straight to the stub and through the proxy.
mod proxy {
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    use super::{Args, PROXY_ADDR, PROXY_UPSTREAM, percentile, text};

    type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

    /// One call: (total latency, time to the first streamed event) in microseconds.
    async fn call(
        client: &HttpClient,
        base: SocketAddr,
        body: &Bytes,
    ) -> anyhow::Result<(u64, u64)> {
        let started = Instant::now();
        let req = hyper::Request::post(format!("http://{base}/v1/chat/completions"))
            .header("content-type", "application/json")
            .header("x-readi-app", "loadgen")
            .body(Full::new(body.clone()))?;
        let resp = client.request(req).await?;
        anyhow::ensure!(resp.status().is_success(), "HTTP {}", resp.status());
        let mut body = resp.into_body();
        let mut first = None;
        while let Some(frame) = body.frame().await {
            if frame?.data_ref().is_some_and(|d| !d.is_empty()) {
                first.get_or_insert_with(|| started.elapsed().as_micros() as u64);
            }
        }
        let total = started.elapsed().as_micros() as u64;
        Ok((total, first.unwrap_or(total)))
    }

    async fn measure(
        client: &HttpClient,
        base: SocketAddr,
        body: Arc<Bytes>,
        seconds: u64,
        concurrency: usize,
    ) -> anyhow::Result<(Vec<u64>, Vec<u64>, u64)> {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let (client, body) = (client.clone(), Arc::clone(&body));
            tasks.push(tokio::spawn(async move {
                let (mut lat, mut first, mut errors) = (Vec::new(), Vec::new(), 0u64);
                while Instant::now() < deadline {
                    match call(&client, base, &body).await {
                        Ok((t, f)) => {
                            lat.push(t);
                            first.push(f);
                        }
                        Err(_) => errors += 1,
                    }
                }
                (lat, first, errors)
            }));
        }
        let (mut lat, mut first, mut errors) = (Vec::new(), Vec::new(), 0);
        for t in tasks {
            let (l, f, e) = t.await?;
            lat.extend(l);
            first.extend(f);
            errors += e;
        }
        Ok((lat, first, errors))
    }

    pub(crate) async fn run(args: &Args) -> anyhow::Result<()> {
        let upstream = *PROXY_UPSTREAM
            .get()
            .ok_or_else(|| anyhow::anyhow!("--rpc proxy runs its own agent; omit --addr"))?;
        let proxy = wait_proxy().await?;
        let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
        http.set_nodelay(true);
        let client: HttpClient = Client::builder(TokioExecutor::new()).build(http);
        let note = text(args.size);
        for stream in [false, true] {
            let body = Arc::new(Bytes::from(
                serde_json::json!({"model": "stub", "stream": stream, "messages": [{"role": "user", "content": note}]})
                    .to_string(),
            ));
            let (mut direct, mut direct_first, e1) = measure(
                &client,
                upstream,
                Arc::clone(&body),
                args.seconds,
                args.concurrency,
            )
            .await?;
            let (mut proxied, mut proxied_first, e2) =
                measure(&client, proxy, body, args.seconds, args.concurrency).await?;
            let kind = if stream { "streamed" } else { "whole" };
            println!(
                "proxy {kind} reply, {}B message, concurrency {}: {} calls ({:.0}/s), {} errors",
                args.size,
                args.concurrency,
                proxied.len(),
                proxied.len() as f64 / args.seconds as f64,
                e1 + e2
            );
            let (d50, d99) = (percentile(&mut direct, 0.5), percentile(&mut direct, 0.99));
            let (p50, p99) = (
                percentile(&mut proxied, 0.5),
                percentile(&mut proxied, 0.99),
            );
            println!(
                "  latency ms direct p50={d50:.2} p99={d99:.2}; through the proxy p50={p50:.2} p99={p99:.2}; added p50={:.2} p99={:.2}",
                p50 - d50,
                p99 - d99
            );
            if stream {
                let (f50, f99) = (
                    percentile(&mut direct_first, 0.5),
                    percentile(&mut direct_first, 0.99),
                );
                let (g50, g99) = (
                    percentile(&mut proxied_first, 0.5),
                    percentile(&mut proxied_first, 0.99),
                );
                println!(
                    "  first token ms direct p50={f50:.2} p99={f99:.2}; through the proxy p50={g50:.2} p99={g99:.2}; added p50={:.2} p99={:.2}",
                    g50 - f50,
                    g99 - f99
                );
            }
            anyhow::ensure!(e1 + e2 == 0, "{} calls failed", e1 + e2);
        }
        Ok(())
    }

    async fn wait_proxy() -> anyhow::Result<SocketAddr> {
        for _ in 0..100 {
            if let Some(a) = PROXY_ADDR.get() {
                return Ok(*a);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("the in-process proxy did not start")
    }
}
