//! The `readi-controller` command: thin wrapper that loads config and calls the library.

use readi_common::clock;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use readi_common::config::LogFormat;
use readi_controller::records::Records;
use readi_controller::registry::{Principal, Registry, RegistryError};
use readi_controller::{Config, config::EXAMPLE};
use std::sync::Arc;

#[derive(Debug, Parser)]
#[command(
    name = "readi-controller",
    version,
    about = "readi controller: agent enrollment, report ingest, READI scorecards"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the gRPC API. Without --config, runs on safe embedded defaults (loopback, ./readi-controller-data).
    Run {
        /// Config file (TOML).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Log as JSON lines, whatever the config says.
        #[arg(long)]
        log_json: bool,
    },
    /// Write a commented example config.
    Init {
        /// Where to write it; `-` for standard output.
        #[arg(long, short, default_value = "readi-controller.toml")]
        output: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Copy agents, reports and released cohorts from an embedded (sled) controller store into the
    /// PostgreSQL database the config names; safe to re-run (the source controller must be stopped).
    ImportSled {
        /// Config file (TOML) with storage.backend = "postgres".
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The data directory of the controller whose store is copied (holding controller.db).
        #[arg(long)]
        from: PathBuf,
    },
    /// Make the CA that issues agents' client certificates (server.tls), if the data directory has
    /// none, and say where it is: replicas share it (a Kubernetes Secret mounted at <data_dir>/tls).
    InitCa {
        /// Config file (TOML) with a [server.tls] section.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Apply the PostgreSQL schema migrations (also applied on start) and list what is applied.
    Migrate {
        /// Config file (TOML).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Check a config file and name every problem.
    Validate {
        /// Config file (TOML).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Issue a one-time enrollment token for an agent (works while the controller runs).
    EnrollToken {
        /// Config file (TOML); the embedded defaults without it.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// An application the agent may report on (repeat for more).
        #[arg(long = "app", required = true)]
        apps: Vec<String>,
        /// Hours until the token expires.
        #[arg(long, default_value_t = 24)]
        ttl_hours: u32,
    },
    /// Vendors (works while the controller runs).
    Vendor {
        #[command(subcommand)]
        command: VendorCommand,
    },
    /// Applications (works while the controller runs).
    App {
        #[command(subcommand)]
        command: AppCommand,
    },
    /// Access tokens for the API and the dashboard (works while the controller runs).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// An application's READI scorecard. Reads the store, or asks the running controller (with
    /// READI_CONTROLLER_TOKEN) when it holds the store.
    Scorecard {
        /// Config file (TOML); the embedded defaults without it.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The application.
        #[arg(long)]
        app: String,
        /// `day`, `week` or `30d`.
        #[arg(long, default_value = "30d")]
        period: String,
        /// `text`, `json`, or `fhir` (a FHIR R4 MeasureReport).
        #[arg(long, default_value = "text")]
        format: String,
        /// The running controller's gRPC address, when it is not `server.listen`.
        #[arg(long)]
        addr: Option<String>,
        /// The period ends with the UTC day before this date (YYYY-MM-DD); today when omitted.
        #[arg(long)]
        until: Option<String>,
    },
    /// Enrolled agents.
    Agents {
        #[command(subcommand)]
        command: AgentsCommand,
    },
    /// Print the stored reports, decoded (the controller must be stopped: the store is locked while
    /// it runs).
    Reports {
        /// Config file (TOML); the embedded defaults without it.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// One JSON object per report.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum VendorCommand {
    /// Register a new vendor and print a token scoped to it; an id already registered is refused.
    Add {
        /// Config file (TOML); the embedded defaults without it.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Its id (a-z, 0-9, '-', '_', '.').
        #[arg(long)]
        id: String,
        /// Its display name.
        #[arg(long)]
        name: String,
        /// Rename a registered vendor instead (no new token is issued).
        #[arg(long)]
        update: bool,
    },
    /// List the registered vendors.
    List {
        /// Config file (TOML); the embedded defaults without it.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum AppCommand {
    /// Register a new application to a vendor; an id already registered is refused.
    Add {
        /// Config file (TOML); the embedded defaults without it.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Its id, as agents report it.
        #[arg(long)]
        id: String,
        /// The vendor that owns it.
        #[arg(long)]
        vendor: String,
        /// Its display name.
        #[arg(long)]
        name: String,
        /// Rename a registered application instead (it stays with its vendor).
        #[arg(long)]
        update: bool,
    },
    /// List the registered applications.
    List {
        /// Config file (TOML); the embedded defaults without it.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Issue a token: `--operator` sees everything, `--vendor ID` its own applications.
    Add {
        /// Config file (TOML); the embedded defaults without it.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// An operator token.
        #[arg(long, conflicts_with = "vendor")]
        operator: bool,
        /// A token scoped to this vendor.
        #[arg(long)]
        vendor: Option<String>,
    },
    /// List issued tokens: id and whom each speaks for (never a secret).
    List {
        /// Config file (TOML); the embedded defaults without it.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Revoke a token by id (the part after `rdc_`, before the second `_`).
    Revoke {
        /// Config file (TOML); the embedded defaults without it.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The token id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum AgentsCommand {
    /// Refuse an enrolled agent's reports from now on (works while the controller runs).
    Revoke {
        /// Config file (TOML); the embedded defaults without it.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The agent id (`agt-...`).
        agent_id: String,
    },
    /// List enrolled agents (works while the controller runs).
    List {
        /// Config file (TOML); the embedded defaults without it.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run { config, log_json } => run(config.as_deref(), log_json),
        Command::Init { output, force } => init(&output, force),
        Command::Validate { config } => validate(&config),
        Command::Migrate { config } => migrate(config.as_deref()),
        Command::InitCa { config } => init_ca(config.as_deref()),
        Command::ImportSled { config, from } => import_sled(config.as_deref(), &from),
        Command::EnrollToken {
            config,
            apps,
            ttl_hours,
        } => enroll_token(config.as_deref(), &apps, ttl_hours),
        Command::Agents {
            command: AgentsCommand::Revoke { config, agent_id },
        } => revoke(config.as_deref(), &agent_id),
        Command::Agents {
            command: AgentsCommand::List { config },
        } => list_agents(config.as_deref()),
        Command::Reports { config, json } => reports(config.as_deref(), json),
        Command::Vendor {
            command:
                VendorCommand::Add {
                    config,
                    id,
                    name,
                    update: true,
                },
        } => registry_command(config.as_deref(), |r| {
            r.rename_vendor(&id, &name)?;
            eprintln!("Vendor {id} renamed; its tokens are unchanged.");
            Ok(())
        }),
        Command::Vendor {
            command:
                VendorCommand::Add {
                    config,
                    id,
                    name,
                    update: false,
                },
        } => registry_command(config.as_deref(), |r| {
            r.add_vendor(&id, &name)?;
            let token = r.add_token(Principal::Vendor(id.clone()))?;
            println!("{token}");
            eprintln!(
                "Vendor {id} registered; the token above sees its applications only (shown once)."
            );
            Ok(())
        }),
        Command::Vendor {
            command: VendorCommand::List { config },
        } => registry_command(config.as_deref(), |r| {
            for v in r.vendors()? {
                println!("{}\t{}", v.id, v.name);
            }
            Ok(())
        }),
        Command::App {
            command:
                AppCommand::Add {
                    config,
                    id,
                    vendor,
                    name,
                    update,
                },
        } => registry_command(config.as_deref(), |r| {
            if update {
                r.rename_app(&id, &vendor, &name)?;
                eprintln!("Application {id} renamed.");
            } else {
                r.add_app(&id, &vendor, &name)?;
                eprintln!("Application {id} registered to vendor {vendor}.");
            }
            Ok(())
        }),
        Command::App {
            command: AppCommand::List { config },
        } => registry_command(config.as_deref(), |r| {
            for a in r.apps()? {
                println!("{}\tvendor={}\t{}", a.id, a.vendor_id, a.name);
            }
            Ok(())
        }),
        Command::Token {
            command: TokenCommand::List { config },
        } => registry_command(config.as_deref(), |r| {
            for t in r.tokens()? {
                let whose = match t.principal {
                    Principal::Operator => "operator".to_owned(),
                    Principal::Vendor(v) => format!("vendor={v}"),
                };
                println!("{}\t{whose}", t.id);
            }
            Ok(())
        }),
        Command::Token {
            command:
                TokenCommand::Add {
                    config,
                    operator,
                    vendor,
                },
        } => registry_command(config.as_deref(), |r| {
            let principal = match (operator, vendor) {
                (true, _) => Principal::Operator,
                (false, Some(v)) => Principal::Vendor(v),
                (false, None) => {
                    return Err(RegistryError::Invalid(
                        "say whose token: --operator or --vendor ID".into(),
                    ));
                }
            };
            println!("{}", r.add_token(principal)?);
            eprintln!("Token issued (shown once; stored as a SHA-256 digest).");
            Ok(())
        }),
        Command::Token {
            command: TokenCommand::Revoke { config, id },
        } => registry_command(config.as_deref(), |r| {
            if r.revoke_token(&id)? {
                eprintln!("Token {id} revoked.");
                Ok(())
            } else {
                Err(RegistryError::Invalid(format!("no token {id}")))
            }
        }),
        Command::Scorecard {
            config,
            app,
            period,
            format,
            addr,
            until,
        } => scorecard(
            config.as_deref(),
            &app,
            &period,
            &format,
            addr,
            until.as_deref(),
        ),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("readi-controller: {e:#}");
            if e.downcast_ref::<Refused>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn load(path: Option<&Path>) -> anyhow::Result<Config> {
    let Some(path) = path else {
        let config = Config::default();
        config
            .validate()
            .map_err(|p| Refused(format!("default config is unusable here:\n{p}")))?;
        return Ok(config);
    };
    Config::load(path)
        .map_err(|p| Refused(format!("invalid config {}:\n{p}", path.display())).into())
}

/// Input the command refuses (an invalid config): exit code 2, like a bad argument.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Refused(String);

fn run(path: Option<&Path>, log_json: bool) -> anyhow::Result<ExitCode> {
    let mut config = load(path)?;
    if log_json {
        config.log.format = LogFormat::Json;
    }
    readi_common::telemetry::init(&config.log);
    let runtime = tokio::runtime::Runtime::new().context("starting async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&config.server.listen)
            .await
            .with_context(|| format!("server.listen: cannot bind {}", config.server.listen))?;
        readi_controller::run(listener, config, readi_common::shutdown::signal()).await?;
        Ok(ExitCode::SUCCESS)
    })
}

fn init(output: &Path, force: bool) -> anyhow::Result<ExitCode> {
    readi_common::cli::write_example(output, force, EXAMPLE).map_err(anyhow::Error::msg)
}

fn validate(path: &Path) -> anyhow::Result<ExitCode> {
    Ok(readi_common::cli::report_validation(
        path,
        Config::load(path),
    ))
}

fn enroll_token(path: Option<&Path>, apps: &[String], ttl_hours: u32) -> anyhow::Result<ExitCode> {
    let config = load(path)?;
    for app in apps {
        if !readi_proto::rules::is_registered_id(app) {
            eprintln!(
                "readi-controller: --app {app:?}: application ids are 1-64 characters of a-z, 0-9, '-', '_', '.'"
            );
            return Ok(ExitCode::from(2));
        }
    }
    if ttl_hours == 0 || ttl_hours > 24 * 30 {
        eprintln!("readi-controller: --ttl-hours must be from 1 to 720");
        return Ok(ExitCode::from(2));
    }
    let records = open_records(&config)?;
    let registry = Registry::new(Arc::clone(&records));
    for app in apps {
        if registry.app(app)?.is_none() {
            eprintln!(
                "readi-controller: --app {app:?} is not registered (readi-controller app add --id {app} --vendor ...)"
            );
            return Ok(ExitCode::from(2));
        }
    }
    let token = readi_controller::enrollment::issue(
        records.as_ref(),
        apps,
        i64::from(ttl_hours) * 3600,
        clock::unix_secs_i64(),
    )?;
    // The token alone on stdout, so it can be piped into a secret store.
    println!("{token}");
    eprintln!(
        "One-time enrollment token for {} (expires in {ttl_hours} h). Give it to the clinic's agent as \
         controller.enrollment_token; it is stored here only as a hash.",
        apps.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}

fn revoke(path: Option<&Path>, agent_id: &str) -> anyhow::Result<ExitCode> {
    let config = load(path)?;
    if !readi_common::identity::is_agent_id(agent_id) {
        eprintln!("readi-controller: {agent_id:?} is not an agent id (agt- and 16 hex digits)");
        return Ok(ExitCode::from(2));
    }
    let records = open_records(&config)?;
    if !known_agent(&config, records.as_ref(), agent_id)? {
        eprintln!(
            "readi-controller: no agent {agent_id} has enrolled with this controller (agents list shows those that have)"
        );
        return Ok(ExitCode::from(2));
    }
    readi_controller::enrollment::revoke(records.as_ref(), agent_id)?;
    eprintln!("Agent {agent_id} revoked: its reports are refused from now on.");
    Ok(ExitCode::SUCCESS)
}

/// The report store the config names, for an offline command.
fn open_store(config: &Config) -> anyhow::Result<Box<dyn readi_controller::store::ReportStore>> {
    use readi_common::embedded::Store;
    if config.storage.backend == readi_controller::config::Backend::Postgres {
        return Ok(Box::new(open_postgres(config)?));
    }
    let dir = &config.storage.data_dir;
    if !dir.join("controller.db").exists() {
        anyhow::bail!(
            "no controller store at {} (has the controller run?)",
            dir.display()
        );
    }
    let store = Store::open(dir, "controller.db").context(
        "opening the controller store (stop the controller first: the store is locked while it runs)",
    )?;
    Ok(Box::new(readi_controller::store::SledStore::open(
        store.db(),
    )?))
}

/// Where the config keeps the registry and enrollment records: files in the data directory, or
/// the PostgreSQL database.
fn open_records(
    config: &Config,
) -> anyhow::Result<std::sync::Arc<dyn readi_controller::records::Records>> {
    if config.storage.backend == readi_controller::config::Backend::Postgres {
        return Ok(std::sync::Arc::new(open_postgres(config)?));
    }
    Ok(std::sync::Arc::new(
        readi_controller::records::FileRecords::new(&config.storage.data_dir),
    ))
}

fn open_postgres(config: &Config) -> anyhow::Result<readi_controller::pgstore::PgStore> {
    let url = config
        .storage
        .postgres_url
        .as_ref()
        .context("storage.postgres_url is not set")?
        .load()
        .context("storage.postgres_url")?;
    Ok(readi_controller::pgstore::PgStore::open_with(
        url.expose(),
        config.storage.postgres_ca.as_deref(),
        config.storage.postgres_connections,
    )?)
}

/// Copies an embedded store into the configured PostgreSQL database.
fn import_sled(path: Option<&Path>, from: &Path) -> anyhow::Result<ExitCode> {
    use readi_common::embedded::Store;
    let config = load(path)?;
    if config.storage.backend != readi_controller::config::Backend::Postgres {
        anyhow::bail!("storage.backend must be \"postgres\" to import into it");
    }
    if !from.join("controller.db").exists() {
        anyhow::bail!("no controller store under {}", from.display());
    }
    let source = Store::open(from, "controller.db").context(
        "opening the source store (stop that controller first: the store is locked while it runs)",
    )?;
    let sled = readi_controller::store::SledStore::open(source.db())?;
    let target = open_postgres(&config)?;
    let done = readi_controller::store::copy(&sled, &target)?;
    let records = readi_controller::records::copy(
        &readi_controller::records::FileRecords::new(from),
        &target,
    )?;
    println!(
        "agents {}, reports new {}, already there {}, released cohorts {}, registry and enrollment records {records}",
        done.agents, done.new, done.already, done.cohorts
    );
    Ok(ExitCode::SUCCESS)
}

/// Makes (or finds) the agents' CA under the data directory.
fn init_ca(path: Option<&Path>) -> anyhow::Result<ExitCode> {
    let config = load(path)?;
    let Some(tls) = &config.server.tls else {
        eprintln!("readi-controller: server.tls is not configured; without it there is no CA");
        return Ok(ExitCode::from(2));
    };
    let ca = readi_controller::tls::AgentCa::load(&config.storage.data_dir, &tls.names)?;
    let dir = ca.ca_path.parent().unwrap_or(Path::new("."));
    println!("{}", dir.display());
    eprintln!(
        "The agents' CA is in {} (ca.pem for agents, ca.key secret). Replicas share it, e.g. \
         kubectl create secret generic readi-controller-ca --from-file={}/ca.pem --from-file={}/ca.key",
        dir.display(),
        dir.display(),
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Applies the database migrations the controller would apply on start, and lists them.
fn migrate(path: Option<&Path>) -> anyhow::Result<ExitCode> {
    let config = load(path)?;
    if config.storage.backend != readi_controller::config::Backend::Postgres {
        println!("storage.backend is \"sled\": the embedded store has no migrations");
        return Ok(ExitCode::SUCCESS);
    }
    let store = open_postgres(&config)?;
    for (version, name) in store.migrate()? {
        println!("{version:>4}  {name}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether `agent_id` enrolled here: the control records say so, or (for agents enrolled by
/// an earlier version) the report store does, when it can be opened.
fn known_agent(config: &Config, records: &dyn Records, agent_id: &str) -> anyhow::Result<bool> {
    use readi_controller::enrollment;
    if enrollment::enrolled(records)?
        .iter()
        .any(|(id, _)| id == agent_id)
    {
        return Ok(true);
    }
    Ok(match open_store(config) {
        Ok(store) => store.agents()?.iter().any(|a| a.id == agent_id),
        Err(_) => false,
    })
}

fn list_agents(path: Option<&Path>) -> anyhow::Result<ExitCode> {
    use readi_controller::enrollment;
    let config = load(path)?;
    let records = open_records(&config)?;
    let revoked = enrollment::revoked(records.as_ref())?;
    let mut agents: std::collections::BTreeMap<String, (i64, Vec<String>, bool)> =
        enrollment::enrolled(records.as_ref())?
            .into_iter()
            .map(|(id, e)| (id, (e.enrolled_at, e.apps, false)))
            .collect();
    // Agents enrolled by an earlier version are only in the store, readable while it is free.
    if let Ok(store) = open_store(&config) {
        for a in store.agents()? {
            let entry = agents.entry(a.id).or_insert((a.enrolled_at, a.apps, false));
            entry.2 |= a.revoked;
        }
    }
    for (id, (at, apps, flagged)) in agents {
        let state = if flagged || revoked.contains(&id) {
            "revoked"
        } else {
            "active"
        };
        println!(
            "{id}\tenrolled_at={}\tapps={}\t{state}",
            readi_common::date::utc_timestamp(at),
            apps.join(",")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn reports(path: Option<&Path>, json: bool) -> anyhow::Result<ExitCode> {
    use prost::Message as _;
    use readi_proto::report::v1 as pb;
    let config = load(path)?;
    let store = open_store(&config)?;
    for r in store.reports(None)? {
        let signed = pb::SignedReport::decode(r.signed.as_slice())?;
        let report = pb::Report::decode(signed.report.as_slice())?;
        if json {
            println!("{}", readi_proto::json::report(&report));
        } else {
            println!("{report:#?}");
        }
    }
    for (name, n) in store.counters()? {
        eprintln!("{name}: {n}");
    }
    Ok(ExitCode::SUCCESS)
}

fn registry_command(
    path: Option<&Path>,
    f: impl FnOnce(&Registry) -> Result<(), RegistryError>,
) -> anyhow::Result<ExitCode> {
    let config = load(path)?;
    match f(&Registry::new(open_records(&config)?)) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(RegistryError::Invalid(why)) => {
            eprintln!("readi-controller: {why}");
            Ok(ExitCode::from(2))
        }
        Err(e) => Err(e.into()),
    }
}

fn scorecard(
    path: Option<&Path>,
    app: &str,
    period: &str,
    format: &str,
    addr: Option<String>,
    until: Option<&str>,
) -> anyhow::Result<ExitCode> {
    use readi_proto::controller::v1 as pb;
    let until = match until {
        None => clock::unix_secs_i64(),
        Some(s) => match readi_common::date::parse_ymd(s) {
            Some(day) => day * 86_400,
            None => {
                eprintln!("readi-controller: --until {s:?} is not a date: write YYYY-MM-DD");
                return Ok(ExitCode::from(2));
            }
        },
    };
    let period = match period {
        "day" => pb::Period::Day,
        "week" => pb::Period::Week,
        "30d" => pb::Period::Days30,
        other => {
            eprintln!("readi-controller: --period {other:?}: use day, week or 30d");
            return Ok(ExitCode::from(2));
        }
    };
    if !matches!(format, "text" | "json" | "fhir") {
        eprintln!("readi-controller: --format must be text, json or fhir");
        return Ok(ExitCode::from(2));
    }
    let config = load(path)?;
    let local = || -> anyhow::Result<pb::Scorecard> {
        let store = open_store(&config)?;
        let registry = Registry::new(open_records(&config)?);
        if registry.app(app)?.is_none() {
            anyhow::bail!("application {app:?} is not registered (readi-controller app add)");
        }
        let scoring = readi_controller::service::Scoring::load(
            store.as_ref(),
            registry,
            config.release.min_clinics,
            config.thresholds.clone(),
        )?;
        Ok(scoring.scorecard(store.as_ref(), app, period, until)?)
    };
    let card = match local() {
        Ok(c) => c,
        Err(local_err) => {
            let addr = addr.unwrap_or_else(|| config.server.listen.clone());
            let token = std::env::var("READI_CONTROLLER_TOKEN").map_err(|_| {
                anyhow::anyhow!(
                    "{local_err:#}; to ask the running controller at {addr}, set READI_CONTROLLER_TOKEN"
                )
            })?;
            remote_scorecard(&addr, &token, app, period, until)?
        }
    };
    if format == "json" {
        println!(
            "{}",
            serde_json::to_string_pretty(&readi_controller::render::json(&card))?
        );
    } else if format == "fhir" {
        let report = readi_controller::fhir::measure_report(&card, clock::unix_secs_i64());
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", readi_controller::render::text(&card));
    }
    Ok(ExitCode::SUCCESS)
}

fn remote_scorecard(
    addr: &str,
    token: &str,
    app: &str,
    period: readi_proto::controller::v1::Period,
    until: i64,
) -> anyhow::Result<readi_proto::controller::v1::Scorecard> {
    use readi_proto::controller::v1::{GetScorecardRequest, controller_client::ControllerClient};
    let runtime = tokio::runtime::Runtime::new().context("starting async runtime")?;
    runtime.block_on(async {
        let mut client = ControllerClient::connect(format!("http://{addr}")).await?;
        let mut req = tonic::Request::new(GetScorecardRequest {
            app_id: app.to_owned(),
            period: period as i32,
            until: Some(prost_types::Timestamp {
                seconds: until,
                nanos: 0,
            }),
        });
        req.metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse()?);
        Ok(client.get_scorecard(req).await?.into_inner())
    })
}
