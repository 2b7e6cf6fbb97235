//! Subcommands over the agent's store, offline or through the running agent: `audit verify`,
//! `scrub`, `keys`, `safeguards` and `tokens`.

use super::*;

/// What `audit verify` prints, from the store or from the running agent.
#[derive(serde::Serialize)]
struct AuditReport {
    ok: bool,
    records: u64,
    checkpoints: u64,
    signed_through: Option<u64>,
    first_bad_sequence: Option<u64>,
    problems: Vec<String>,
    public_key: Option<String>,
    source: String,
    /// What the check against the controller's anchor found, or why it was not made.
    #[serde(skip_serializing_if = "Option::is_none")]
    controller_anchor: Option<String>,
}

pub(crate) fn audit_verify(
    path: Option<&Path>,
    addr: Option<String>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let config = load(path)?;
    let report = match Source::of(&config, addr)? {
        Source::Agent(at) => {
            verify_remote(&at).with_context(|| format!("the agent at {at} did not answer"))?
        }
        Source::Local(listen) => match verify_store(&config) {
            Ok(r) => r,
            // The running agent holds the store's lock: ask it instead.
            Err(local) => verify_remote(&listen).with_context(|| {
                format!(
                    "the store could not be opened ({local}) and the agent at {listen} did not answer"
                )
            })?,
        },
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "audit log ({}): {} records, {} signed checkpoints{}",
            report.source,
            report.records,
            report.checkpoints,
            report
                .signed_through
                .map(|s| format!(", signed through #{s}"))
                .unwrap_or_default()
        );
        if let Some(k) = &report.public_key {
            println!("checkpoint key (Ed25519): {k}");
        }
        if let Some(a) = &report.controller_anchor {
            println!("controller anchor: {a}");
        }
        if report.ok {
            println!("OK: every record and checkpoint verifies");
        } else {
            for p in &report.problems {
                println!("FAILED: {p}");
            }
        }
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

fn verify_store(config: &Config) -> anyhow::Result<AuditReport> {
    let o = offline_unchecked(config)?;
    // Always against the high-water mark: a log cut together with its checkpoints still fails.
    let mut mark_problem = None;
    match readi_agent::mark::Mark::open(&config.storage.data_dir, &o.keys, o.store.db()) {
        Ok(mark) => {
            let mark = std::sync::Arc::new(mark);
            if let Err(e) = mark.behind(&o.keys, &o.audit) {
                mark_problem = Some(e.to_string());
            }
            o.audit.attach(mark);
        }
        Err(e) => mark_problem = Some(e.to_string()),
    }
    let v = o.audit.verify()?;
    let mut problems: Vec<(u64, String)> = v.problems;
    if let Some(p) = mark_problem
        && !problems.iter().any(|(_, q)| q.contains("high-water mark"))
    {
        problems.push((0, p));
    }
    let controller_anchor = match against_anchor(config, &o) {
        Ok((said, problem)) => {
            if let Some(p) = problem {
                problems.push(p);
            }
            Some(said)
        }
        Err(why) => Some(format!("not checked: {why}")),
    };
    problems.sort_by_key(|p| p.0);
    Ok(AuditReport {
        ok: problems.is_empty(),
        records: v.records,
        checkpoints: v.checkpoints,
        signed_through: (v.signed_through > 0).then_some(v.signed_through),
        first_bad_sequence: problems.first().map(|p| p.0),
        problems: problems.into_iter().map(|p| p.1).collect(),
        public_key: Some(v.public_key),
        source: format!("store {}", config.storage.data_dir.display()),
        controller_anchor,
    })
}

/// Checks the local log against the audit chain head the controller holds for this agent, which
/// no one on the clinic host can roll back: what was found, and a problem when the log lacks it.
fn against_anchor(config: &Config, o: &Offline) -> Result<(String, Option<(u64, String)>), String> {
    let Some(link) = &config.controller else {
        return Err("no controller configured ([controller])".into());
    };
    if readi_agent::egress::existing_agent_id(o.store.db(), &o.keys).is_none() {
        return Err("this agent has no reporting identity yet".into());
    }
    let egress = readi_agent::egress::Egress::open(o.store.db(), o.keys.clone(), &link.url)
        .map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let anchor = runtime
        .block_on(readi_agent::reporting::audit_anchor(link, &egress))
        .map_err(|e| format!("the controller at {} did not answer ({e})", link.url))?;
    let Some((report, seq, hash)) = anchor else {
        return Ok(("the controller holds none yet".into(), None));
    };
    let hash = readi_common::identity::hex(&hash);
    let said = format!("#{seq} from report {report} (controller {})", link.url);
    let missing = o.audit.holds(seq, &hash).map_err(|e| e.to_string())?;
    Ok(match missing {
        None => (format!("{said}: the log holds it"), None),
        Some(m) => {
            let last = o.audit.head().0;
            let what = if last < seq {
                format!(
                    "records #{} to #{seq} are missing: the controller's anchor says #{seq} was in the log (report {report}), but the log ends at #{last}",
                    last + 1
                )
            } else {
                format!("{m} (the controller's anchor, report {report})")
            };
            (format!("{said}: FAILED"), Some((last + 1, what)))
        }
    })
}

/// What `scrub` prints as JSON.
#[derive(serde::Serialize)]
struct ScrubOut {
    ok: bool,
    records: u64,
    seconds: f64,
    damaged: Vec<readi_agent::scrub::Damage>,
}

pub(crate) fn scrub(path: Option<&Path>, json: bool) -> anyhow::Result<ExitCode> {
    let config = load(path)?;
    let o = offline_unchecked(&config)
        .context("the store is in use or missing: stop the agent first")?;
    let mut r = {
        let mark = readi_agent::mark::Mark::open(&config.storage.data_dir, &o.keys, o.store.db());
        let mark_problem = match &mark {
            Ok(m) => m.behind(&o.keys, &o.audit).err().map(|e| e.to_string()),
            Err(e) => Some(e.to_string()),
        };
        if let Ok(m) = mark {
            o.audit.attach(std::sync::Arc::new(m));
        }
        let mut r = readi_agent::scrub::scrub(o.store.db(), &o.keys, &o.audit);
        if let Some(why) = mark_problem {
            r.damaged.push(readi_agent::scrub::Damage {
                tree: "hwm".into(),
                key: "(file)".into(),
                why,
            });
        }
        r
    };
    r.damaged.dedup();
    if json {
        let out = ScrubOut {
            ok: r.ok(),
            records: r.records,
            seconds: r.elapsed.as_secs_f64(),
            damaged: r.damaged.clone(),
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "scrub: {} records checked in {:.1} s",
            r.records,
            r.elapsed.as_secs_f64()
        );
        for d in &r.damaged {
            println!("DAMAGED: {} {}: {}", d.tree, d.key, d.why);
        }
        if r.ok() {
            println!("OK: every sealed value opens and every chain verifies");
        }
    }
    Ok(if r.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

fn verify_remote(addr: &str) -> anyhow::Result<AuditReport> {
    use readi_proto::agent::v1::{VerifyAuditRequest, compliance_client::ComplianceClient};
    let runtime = tokio::runtime::Runtime::new().context("starting async runtime")?;
    runtime.block_on(async {
        let mut client = ComplianceClient::connect(format!("http://{addr}")).await?;
        let r = client
            .verify_audit(VerifyAuditRequest {})
            .await?
            .into_inner();
        Ok(AuditReport {
            ok: r.ok,
            records: r.records,
            checkpoints: r.checkpoints,
            signed_through: None,
            first_bad_sequence: (!r.ok).then_some(r.first_bad_sequence),
            problems: if r.ok { Vec::new() } else { vec![r.problem] },
            public_key: None,
            source: format!("agent at {addr}"),
            controller_anchor: None,
        })
    })
}

/// An existing store opened by an offline command, with its keys and audit log.
pub(crate) struct Offline {
    pub(crate) store: readi_common::embedded::Store,
    pub(crate) keys: std::sync::Arc<readi_agent::keys::Keys>,
    pub(crate) audit: readi_agent::audit::Audit,
}

/// Opens the store for a command that may write: refused when it ends before its high-water mark,
/// which then covers what the command writes.
pub(crate) fn offline(config: &Config) -> anyhow::Result<Offline> {
    let o = offline_unchecked(config)?;
    let mark = readi_agent::mark::Mark::open_checked(
        &config.storage.data_dir,
        &o.keys,
        o.store.db(),
        &o.audit,
    )?;
    o.audit.attach(mark);
    Ok(o)
}

/// Opens the store without comparing it with its high-water mark, for the commands that report.
fn offline_unchecked(config: &Config) -> anyhow::Result<Offline> {
    let store = open_existing(config)?;
    let keys = std::sync::Arc::new(readi_agent::keys::Keys::load(
        config.keys.kek.as_ref(),
        &config.storage.data_dir,
        store.db(),
    )?);
    let audit = readi_agent::audit::Audit::open(store.db(), &keys, 64)?;
    Ok(Offline { store, keys, audit })
}

/// Opens an existing store for an offline command; never creates one.
pub(crate) fn open_existing(config: &Config) -> anyhow::Result<readi_common::embedded::Store> {
    let path = config.storage.data_dir.join("agent.db");
    if !path.exists() {
        anyhow::bail!(
            "no agent store at {} (storage.data_dir): start the agent once, or pass --config",
            path.display()
        );
    }
    readi_common::embedded::Store::open(&config.storage.data_dir, "agent.db").map_err(|e| {
        if e.to_string().contains("WouldBlock") || e.to_string().contains("lock") {
            anyhow::anyhow!(
                "the agent store at {} is in use by a running agent: stop it first (systemctl stop \
                 readi-agent), or ask it with --addr",
                path.display()
            )
        } else {
            e.into()
        }
    })
}

/// Where a reporting command reads: the agent at an explicit `--addr`, always (never a local
/// store that happens to be here); without one, the local store, or the running agent at
/// `server.listen` when it holds the store.
pub(crate) enum Source {
    /// `--addr`, as `host:port`.
    Agent(String),
    /// The store, else the agent at this address.
    Local(String),
}

impl Source {
    pub(crate) fn of(config: &Config, addr: Option<String>) -> anyhow::Result<Source> {
        Ok(match addr {
            Some(a) => Source::Agent(host_port(&a)?),
            None => Source::Local(config.server.listen.clone()),
        })
    }
}

/// `--addr` as `host:port`: `http://` and a trailing `/` are accepted, since users copy URLs.
fn host_port(addr: &str) -> anyhow::Result<String> {
    let a = addr.trim().trim_end_matches('/');
    if a.starts_with("https://") {
        anyhow::bail!(
            "--addr {addr:?}: these commands speak plaintext gRPC to a loopback listener; give its host:port"
        );
    }
    let a = a.strip_prefix("http://").unwrap_or(a);
    if a.is_empty() || a.contains('/') || !a.contains(':') {
        anyhow::bail!("--addr {addr:?}: want host:port (for example 127.0.0.1:50051)");
    }
    Ok(a.to_owned())
}

pub(crate) fn keys_command(path: Option<&Path>, rotate: bool) -> anyhow::Result<ExitCode> {
    let config = load(path)?;
    let Offline { keys, audit, .. } =
        offline(&config).context("the store is in use or missing: stop the agent first")?;
    if rotate {
        let rotated = keys.sealer.rotate_all()?;
        if rotated.is_empty() {
            println!("no data keys yet: nothing to rotate");
        }
        for (class, epoch) in &rotated {
            audit.record_by("key_rotate", "cli", "", &format!("{class} epoch {epoch}"))?;
            println!("{class}: now epoch {epoch}");
        }
        audit.checkpoint()?;
    }
    for k in keys.sealer.describe() {
        // Seals are counted in reserved blocks, so after a restart the count is an upper bound.
        println!(
            "{:<16} epoch {:>4}  created {}  at most {:>8} seals{}",
            k.class,
            k.epoch,
            readi_common::date::utc_timestamp(k.created_unix as i64),
            k.seals,
            if k.current { "  current" } else { "" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn safeguards(
    path: Option<&Path>,
    addr: Option<String>,
    format: &str,
) -> anyhow::Result<ExitCode> {
    if !matches!(format, "text" | "json" | "html") {
        anyhow::bail!("--format must be text, json or html");
    }
    let config = load(path)?;
    let source = Source::of(&config, addr)?;
    let local = || -> anyhow::Result<_> {
        let o = offline(&config)?;
        let tokens = readi_agent::tokens::Tokens::open(o.store.db(), config.auth.required)?;
        // Stopped, the store is scrubbed here: the evidence is from now.
        let scrubbed = readi_agent::scrub::scrub(o.store.db(), &o.keys, &o.audit);
        Ok(readi_agent::safeguards::report(
            &config,
            &o.keys,
            &o.audit,
            &tokens,
            &config.server.listen,
            o.store.db(),
            Some(&scrubbed),
        ))
    };
    let remote = |addr: &str| -> anyhow::Result<_> {
        use readi_proto::agent::v1::{SafeguardsRequest, compliance_client::ComplianceClient};
        let runtime = tokio::runtime::Runtime::new().context("starting async runtime")?;
        runtime.block_on(async {
            let mut c = ComplianceClient::connect(format!("http://{addr}")).await?;
            Ok::<_, anyhow::Error>(c.safeguards(SafeguardsRequest {}).await?.into_inner())
        })
    };
    let (report, from) = match &source {
        Source::Agent(at) => (
            remote(at).with_context(|| format!("the agent at {at} did not answer"))?,
            format!("agent at {at}"),
        ),
        Source::Local(listen) => match local() {
            Ok(r) => (r, format!("store {}", config.storage.data_dir.display())),
            Err(e) => (
                remote(listen).with_context(|| {
                    format!(
                        "the store could not be opened ({e}) and the agent at {listen} did not answer"
                    )
                })?,
                format!("agent at {listen}"),
            ),
        },
    };
    eprintln!("safeguards from the {from}");
    let out = match format {
        "json" => readi_agent::safeguards::render_json(&report),
        "html" => readi_agent::safeguards::render_html(&report),
        _ => readi_agent::safeguards::render_text(&report),
    };
    print!("{out}");
    let failed = report
        .safeguards
        .iter()
        .any(|g| g.status == readi_proto::agent::v1::CheckStatus::Fail as i32);
    Ok(if failed {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

pub(crate) fn tokens_command(action: TokensAction) -> anyhow::Result<ExitCode> {
    use readi_agent::tokens::{Role, Tokens};
    let path = match &action {
        TokensAction::Add { config, .. }
        | TokensAction::List { config }
        | TokensAction::Revoke { config, .. } => config.clone(),
    };
    let config = load(path.as_deref())?;
    let Offline { store, audit, .. } =
        offline(&config).context("stop the agent first: tokens need the store")?;
    let tokens = Tokens::open(store.db(), config.auth.required)?;
    match action {
        TokensAction::Add { role, app, .. } => {
            let role = Role::parse(&role)
                .ok_or_else(|| anyhow::anyhow!("--role must be app, compliance or admin"))?;
            let app = match (role, app) {
                (Role::App, Some(a)) if !a.is_empty() && a.len() <= 128 => a,
                (Role::App, _) => anyhow::bail!("an app token needs --app <application id>"),
                (_, Some(_)) => anyhow::bail!("--app applies to app tokens only"),
                (_, None) => String::new(),
            };
            let (info, token) = tokens.add(role, &app)?;
            audit.record_by(
                "token_add",
                "cli",
                &app,
                &format!("token {} role {}", info.id, role.as_str()),
            )?;
            audit.checkpoint()?;
            println!("{token}");
            eprintln!(
                "token {} ({}{}) created; it is shown once: store it in the caller's secret store",
                info.id,
                role.as_str(),
                if app.is_empty() {
                    String::new()
                } else {
                    format!(", app {app}")
                }
            );
        }
        TokensAction::List { .. } => {
            for t in tokens.list()? {
                println!(
                    "{}  {:<10} {:<24} created {}",
                    t.id,
                    t.role.as_str(),
                    t.app_id,
                    readi_common::date::utc_timestamp(t.created_unix as i64)
                );
            }
        }
        TokensAction::Revoke { id, .. } => {
            tokens.revoke(&id)?;
            audit.record_by("token_revoke", "cli", "", &format!("token {id}"))?;
            audit.checkpoint()?;
            println!("token {id} revoked");
        }
    }
    Ok(ExitCode::SUCCESS)
}
