//! What left the clinic and what clinicians reported: `egress` (the ledger, decoded and checked)
//! and `feedback export`, offline or through the running agent.

use super::store::{Offline, Source, offline, open_existing};
use super::*;

pub(crate) fn egress(
    path: Option<&Path>,
    addr: Option<String>,
    from: u64,
    json: bool,
    summary: bool,
) -> anyhow::Result<ExitCode> {
    let config = load(path)?;
    let local = match Source::of(&config, addr)? {
        Source::Agent(at) => Err(at),
        Source::Local(listen) => Ok(listen),
    };
    let store = match &local {
        Ok(_) => Some(open_existing(&config)),
        Err(_) => None,
    };
    let (entries, chain_ok, source) = match store {
        Some(Ok(store)) => {
            let mut all = Vec::new();
            let mut ok = true;
            let mut next = from;
            loop {
                let (page, page_ok) = readi_agent::egress::list(store.db(), next, 1000)?;
                ok &= page_ok;
                let Some(last) = page.last().map(|e| e.sequence) else {
                    break;
                };
                all.extend(page);
                next = last + 1;
            }
            (
                all,
                ok,
                format!("store {}", config.storage.data_dir.display()),
            )
        }
        Some(Err(why)) => {
            let listen = local.as_ref().map_or("", String::as_str);
            let (entries, ok) = egress_remote(listen, from).with_context(|| {
                format!(
                    "the store could not be opened ({why}) and the agent at {listen} did not answer"
                )
            })?;
            (entries, ok, format!("agent at {listen}"))
        }
        None => {
            let at = local.as_ref().err().map_or("", String::as_str);
            let (entries, ok) = egress_remote(at, from)
                .with_context(|| format!("the agent at {at} did not answer"))?;
            (entries, ok, format!("agent at {at}"))
        }
    };
    let utc = |s: i64| readi_common::date::utc_timestamp(s);
    let ts = |t: &Option<prost_types::Timestamp>| t.as_ref().map(|t| t.seconds);
    for e in &entries {
        let decoded = e.report.as_ref().map(readi_proto::json::report);
        if json {
            let line = serde_json::json!({
                "sequence": e.sequence,
                "recorded_at": ts(&e.recorded_at),
                "destination": e.destination,
                "delivered_at": ts(&e.delivered_at),
                "payload_hex": readi_common::identity::hex(&e.payload),
                "entry_hash": readi_common::identity::hex(&e.entry_hash),
                "report": decoded,
            });
            println!("{line}");
        } else {
            println!(
                "#{} recorded {} to {} — {} — {} bytes, hash {}",
                e.sequence,
                utc(ts(&e.recorded_at).unwrap_or(0)),
                e.destination,
                match ts(&e.delivered_at) {
                    Some(t) => format!("delivered {}", utc(t)),
                    None => "in the outbox".to_owned(),
                },
                e.payload.len(),
                readi_common::identity::hex(&e.entry_hash)
            );
            if summary {
                continue;
            }
            println!("  bytes: {}", readi_common::identity::hex(&e.payload));
            if let Some(d) = decoded {
                println!(
                    "  decoded: {}",
                    serde_json::to_string_pretty(&d)?.replace('\n', "\n  ")
                );
            }
        }
    }
    if !json {
        println!(
            "egress ledger ({source}): {} entries; hash chain {}",
            entries.len(),
            if chain_ok { "verifies" } else { "FAILED" }
        );
    }
    Ok(if chain_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

/// Unix seconds at the start of a UTC date written YYYY-MM-DD.
fn parse_date(s: &str) -> anyhow::Result<u64> {
    readi_common::date::parse_ymd(s)
        .map(|day| (day * 86_400) as u64)
        .ok_or_else(|| anyhow::anyhow!("--since {s:?} is not a date: write YYYY-MM-DD"))
}

pub(crate) fn feedback_export(
    path: Option<&Path>,
    addr: Option<String>,
    since: &str,
    output: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let since = parse_date(since)?;
    let token = std::env::var("READI_TOKEN").map_err(|_| {
        anyhow::anyhow!(
            "set READI_TOKEN to a compliance token (readi-agent tokens add --role compliance): \
             feedback detail is decrypted for the compliance role only"
        )
    })?;
    let config = load(path)?;
    let (listen, explicit) = match Source::of(&config, addr)? {
        Source::Agent(at) => (at, true),
        Source::Local(listen) => (listen, false),
    };
    let here = if explicit {
        Err(anyhow::anyhow!("--addr given"))
    } else {
        offline(&config)
    };
    let (lines, source) = match here {
        Ok(Offline { store, keys, audit }) => {
            let tokens = readi_agent::tokens::Tokens::open(store.db(), config.auth.required)?;
            use readi_agent::tokens::Role;
            let caller = tokens
                .check(token.trim())
                .filter(|c| matches!(c.role, Role::Compliance | Role::Admin))
                .ok_or_else(|| {
                    let _ = audit.record(
                        "auth_refused",
                        "",
                        "feedback export without a compliance token",
                    );
                    anyhow::anyhow!("READI_TOKEN is not a valid compliance token on this agent")
                })?;
            let records = readi_agent::feedback::Feedback::open(store.db(), keys)?.since(since)?;
            audit.record_by(
                "feedback_export",
                &caller.token_id,
                "",
                &format!("{} records since {since} (cli)", records.len()),
            )?;
            let lines: Vec<String> = records
                .iter()
                .map(serde_json::to_string)
                .collect::<Result<_, _>>()?;
            (
                lines,
                format!("store {}", config.storage.data_dir.display()),
            )
        }
        Err(_) if explicit => {
            let lines = feedback_remote(&listen, token.trim(), since)
                .with_context(|| format!("the agent at {listen} did not answer"))?;
            (lines, format!("agent at {listen}"))
        }
        Err(local) => {
            let lines = feedback_remote(&listen, token.trim(), since).with_context(|| {
                format!(
                    "the store could not be opened ({local}) and the agent at {listen} did not answer"
                )
            })?;
            (lines, format!("agent at {listen}"))
        }
    };
    let mut text = lines.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    match output {
        Some(p) => {
            // The detail holds clinicians' free text: readable by the owner only, from creation.
            use std::io::Write as _;
            use std::os::unix::fs::OpenOptionsExt as _;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(p)
                .with_context(|| format!("creating {}", p.display()))?;
            f.write_all(text.as_bytes())
                .with_context(|| format!("writing {}", p.display()))?;
        }
        None => print!("{text}"),
    }
    eprintln!(
        "{} feedback records exported from the {source}",
        lines.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn feedback_remote(addr: &str, token: &str, since: u64) -> anyhow::Result<Vec<String>> {
    use readi_proto::agent::v1::{ExportFeedbackRequest, compliance_client::ComplianceClient};
    let runtime = tokio::runtime::Runtime::new().context("starting async runtime")?;
    runtime.block_on(async {
        let mut client = ComplianceClient::connect(format!("http://{addr}")).await?;
        let mut req = tonic::Request::new(ExportFeedbackRequest {
            since: Some(prost_types::Timestamp {
                seconds: since as i64,
                nanos: 0,
            }),
        });
        req.metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse()?);
        let r = client
            .export_feedback(req)
            .await
            .map_err(|s| anyhow::anyhow!("{}", s.message()))?;
        Ok(r.into_inner().records_json)
    })
}

fn egress_remote(
    addr: &str,
    from: u64,
) -> anyhow::Result<(Vec<readi_proto::agent::v1::EgressEntry>, bool)> {
    use readi_proto::agent::v1::{ListEgressRequest, compliance_client::ComplianceClient};
    let runtime = tokio::runtime::Runtime::new().context("starting async runtime")?;
    runtime.block_on(async {
        let mut client = ComplianceClient::connect(format!("http://{addr}")).await?;
        let mut all = Vec::new();
        let mut ok = true;
        let mut next = from;
        loop {
            let r = client
                .list_egress(ListEgressRequest {
                    from_sequence: next,
                    limit: 1000,
                })
                .await?
                .into_inner();
            ok &= r.chain_ok;
            let Some(last) = r.entries.last().map(|e| e.sequence) else {
                break;
            };
            all.extend(r.entries);
            next = last + 1;
        }
        Ok((all, ok))
    })
}
