//! The vendor dashboard: server-rendered HTML over the same scorecards as the API, with SVG trend
//! charts drawn here (no script, no fonts, nothing fetched at view time). Vendors log in with their
//! token and see their own applications; every figure shows its noise and its cohort.

use readi_common::clock;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use readi_proto::controller::v1::{self as pb, Status};
use readi_proto::report::v1::Metric;

use crate::aggregate::{Labels, View, day_of, ymd};
use crate::registry::Principal;
use crate::render::{criterion_name, evidence_text, status_name};
use crate::scorecard::{period_days, released_view};
use crate::service::Scoring;
use crate::session::Sessions;
use crate::store::ReportStore;

/// How long a login lasts.
const SESSION: Duration = Duration::from_secs(8 * 3600);
const COOKIE: &str = "readi_session";

/// What the dashboard serves from.
pub struct Dashboard {
    scoring: Arc<Scoring>,
    store: Arc<dyn ReportStore>,
    sessions: Sessions,
}

impl std::fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dashboard").finish_non_exhaustive()
    }
}

impl Dashboard {
    /// A dashboard over the controller's scoring and store, its logins signed by `sessions`.
    pub fn new(
        scoring: Arc<Scoring>,
        store: Arc<dyn ReportStore>,
        sessions: Sessions,
    ) -> Arc<Dashboard> {
        Arc::new(Dashboard {
            scoring,
            store,
            sessions,
        })
    }

    fn who(&self, headers: &HeaderMap) -> Option<Principal> {
        let cookie = headers.get(header::COOKIE)?.to_str().ok()?;
        let value = cookie
            .split(';')
            .filter_map(|c| c.trim().split_once('='))
            .find(|(k, _)| *k == COOKIE)?
            .1;
        let token_id = self.sessions.check(value, clock::unix_secs_i64())?;
        // A revoked token ends its sessions at once.
        self.scoring.registry.token_principal(&token_id).ok()?
    }
}

/// The dashboard's routes.
pub fn router(d: Arc<Dashboard>) -> axum::Router {
    axum::Router::new()
        .route("/", get(overview))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/apps/{id}", get(app_page))
        .route("/style.css", get(style))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(d)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A page with the security headers every page carries.
/// The page shown while the registry or store cannot be read.
fn unavailable(e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "Dashboard: the registry is unavailable");
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Unavailable",
        "<h1>Unavailable</h1><p>The controller cannot read its registry just now; try again shortly.</p>",
    )
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · readi</title><link rel=\"stylesheet\" href=\"/style.css\"></head>\
         <body><header><a class=\"brand\" href=\"/\">readi</a> <span>READI readiness</span></header>\
         <main id=\"main\">{body}</main></body></html>\n",
        escape(title)
    );
    let mut r = (status, html).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn style() -> Response {
    let mut r = STYLE.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/css"));
    r
}

const STYLE: &str = "body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1f2328;background:#f6f8fa}\
header{background:#0b3d5c;color:#fff;padding:.7em 1.5em}header a{color:#fff;font-weight:700;text-decoration:none;margin-right:.6em}\
main{max-width:1100px;margin:1.5em auto;padding:0 1em}\
table{border-collapse:collapse;width:100%;background:#fff}th,td{border:1px solid #d0d7de;padding:.45em .6em;text-align:left;vertical-align:top}\
th{background:#eef2f5}.meets{color:#116329;font-weight:600}.concern{color:#a40e26;font-weight:600}.insufficient{color:#6e5a00;font-weight:600}.review{color:#8a4600;font-weight:600}\
section{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:1em;margin:1em 0}\
.note{color:#57606a}svg{max-width:100%;height:auto}nav a{margin-right:1em}\
label{display:block;margin:.5em 0}input{font:inherit;padding:.3em;width:30em;max-width:100%}button{font:inherit;padding:.3em 1em}";

#[derive(serde::Deserialize)]
struct LoginForm {
    token: String,
}

async fn login_page() -> Response {
    page(
        StatusCode::OK,
        "Log in",
        "<h1>Log in</h1><form method=\"post\" action=\"/login\">\
         <label for=\"token\">Access token</label>\
         <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"off\" required>\
         <p><button type=\"submit\">Log in</button></p></form>\
         <p class=\"note\">Your operator issues tokens (<code>readi-controller vendor add</code>).</p>",
    )
}

async fn login(State(d): State<Arc<Dashboard>>, Form(f): Form<LoginForm>) -> Response {
    let checked = d.scoring.registry.check_with_id(f.token.trim());
    let (token_id, _) = match checked {
        Ok(Some(found)) => found,
        Err(e) => return unavailable(&e),
        Ok(None) => {
            return page(
                StatusCode::UNAUTHORIZED,
                "Log in",
                "<h1>Log in</h1><p role=\"alert\" class=\"concern\">That token is not valid.</p>\
             <p><a href=\"/login\">Try again</a></p>",
            );
        }
    };
    let expires = clock::unix_secs_i64() + SESSION.as_secs() as i64;
    let value = d.sessions.issue(&token_id, expires);
    let mut r = Redirect::to("/").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&format!(
            "{COOKIE}={value}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age={}",
            SESSION.as_secs()
        ))
        .expect("cookie is ASCII"),
    );
    r
}

/// Logging out clears the cookie; a session ends with its expiry or its token's revocation.
async fn logout() -> Response {
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "readi_session=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0",
        ),
    );
    r
}

fn status_class(s: i32) -> &'static str {
    match Status::try_from(s) {
        Ok(Status::Meets) => "meets",
        Ok(Status::Concern) => "concern",
        _ => "insufficient",
    }
}

async fn overview(State(d): State<Arc<Dashboard>>, headers: HeaderMap) -> Response {
    let Some(who) = d.who(&headers) else {
        return Redirect::to("/login").into_response();
    };
    let apps: Vec<_> = match d.scoring.registry.apps() {
        Ok(apps) => apps
            .into_iter()
            .filter(|a| d.scoring.registry.may_see(&who, a))
            .collect(),
        Err(e) => return unavailable(&e),
    };
    let d2 = Arc::clone(&d);
    let cards = crate::store::spawn_blocking(move || {
        apps.into_iter()
            .map(|a| {
                let card = d2.scoring.scorecard(
                    d2.store.as_ref(),
                    &a.id,
                    pb::Period::Days30,
                    clock::unix_secs_i64(),
                );
                (a, card)
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    let mut rows = String::new();
    for (a, card) in &cards {
        let Ok(card) = card else {
            rows.push_str(&format!(
                "<tr><th scope=\"row\">{}</th><td colspan=\"8\">unavailable</td></tr>",
                escape(&a.name)
            ));
            continue;
        };
        let mut cells = String::new();
        for c in &card.criteria {
            cells.push_str(&format!(
                "<td class=\"{}\">{}{}</td>",
                status_class(c.status),
                status_name(c.status),
                if c.review {
                    " <span class=\"review\">(drift: review)</span>"
                } else {
                    ""
                }
            ));
        }
        rows.push_str(&format!(
            "<tr><th scope=\"row\"><a href=\"/apps/{}\">{}</a></th><td>{}</td><td>{}</td>{cells}</tr>",
            escape(&a.id),
            escape(&a.name),
            escape(&a.vendor_id),
            card.clinics
        ));
    }
    if rows.is_empty() {
        rows.push_str(
            "<tr><td colspan=\"9\">No applications registered for this account.</td></tr>",
        );
    }
    let headers: String = (1..=6)
        .map(|c| format!("<th scope=\"col\">{}</th>", criterion_name(c)))
        .collect();
    page(
        StatusCode::OK,
        "Applications",
        &format!(
            "<h1>Applications</h1><p class=\"note\">READI readiness over the last 30 days. Figures are \
             aggregated across clinics, noised before they left each clinic, and shown only when at \
             least {} clinics contributed.</p>\
             <table><caption>Status per READI criterion</caption><thead><tr><th scope=\"col\">Application</th>\
             <th scope=\"col\">Vendor</th><th scope=\"col\">Clinics</th>{headers}</tr></thead><tbody>{rows}</tbody></table>\
             <form method=\"post\" action=\"/logout\"><p><button type=\"submit\">Log out</button></p></form>",
            d.scoring.min_clinics
        ),
    )
}

#[derive(serde::Deserialize)]
struct PeriodQuery {
    period: Option<String>,
}

/// The headline figure of a criterion on one day: (value, error).
fn headline(criterion: i32, v: &View) -> Option<(f64, f64)> {
    let none = Labels::default();
    let rate = |num: Metric, den: Metric| {
        let (n, d) = (v.total(num), v.total(den));
        (d.value > 0).then(|| {
            let r = (n.value as f64 / d.value as f64).max(0.0);
            let e = 1.96 * (n.variance + r * r * d.variance).sqrt() / d.value as f64;
            (r * 100.0, e * 100.0)
        })
    };
    match pb::Criterion::try_from(criterion).ok()? {
        pb::Criterion::Safety => {
            let s = v.total(Metric::MissedEscalations);
            Some((s.value as f64, s.error()))
        }
        pb::Criterion::Privacy => {
            let s = v.total(Metric::PhiRedacted);
            Some((s.value as f64, s.error()))
        }
        pb::Criterion::Equity => rate(Metric::FlaggedExchanges, Metric::Exchanges),
        pb::Criterion::Engagement => {
            let s = v.total(Metric::Sessions);
            Some((s.value as f64, s.error()))
        }
        pb::Criterion::Effectiveness => {
            let h = v.hist(
                Metric::OutcomeChange,
                &Labels {
                    measure: 1,
                    arm: 1,
                    ..none
                },
            );
            crate::scorecard::outcome_mean(&h).map(|(m, e, _)| (m, e))
        }
        pb::Criterion::Implementation => rate(Metric::Errors, Metric::Requests),
        pb::Criterion::Unspecified => None,
    }
}

fn headline_label(criterion: i32) -> &'static str {
    match pb::Criterion::try_from(criterion) {
        Ok(pb::Criterion::Safety) => "missed escalations per day",
        Ok(pb::Criterion::Privacy) => "PHI spans redacted per day",
        Ok(pb::Criterion::Equity) => "flagged exchanges, % per day",
        Ok(pb::Criterion::Engagement) => "sessions per day",
        Ok(pb::Criterion::Effectiveness) => "mean PHQ-9 change (AI-assisted) per day",
        Ok(pb::Criterion::Implementation) => "failed requests, % per day",
        _ => "",
    }
}

/// An SVG line chart of a daily series with its noise band; withheld days are gaps.
pub fn chart(title: &str, series: &[(i64, Option<(f64, f64)>)]) -> String {
    let (w, h, pad) = (640.0, 180.0, 36.0);
    let points: Vec<(usize, f64, f64)> = series
        .iter()
        .enumerate()
        .filter_map(|(i, (_, p))| p.map(|(v, e)| (i, v, e)))
        .collect();
    let lo = points.iter().map(|p| p.1 - p.2).fold(0.0f64, f64::min);
    let hi = points.iter().map(|p| p.1 + p.2).fold(1.0f64, f64::max);
    let n = series.len().max(2) as f64;
    let x = |i: usize| pad + (w - 2.0 * pad) * i as f64 / (n - 1.0);
    let y = |v: f64| h - pad - (h - 2.0 * pad) * (v - lo) / (hi - lo);
    let mut body = String::new();
    // Runs of consecutive released days are drawn as separate lines and bands.
    let mut runs: Vec<Vec<(usize, f64, f64)>> = Vec::new();
    for p in &points {
        match runs.last_mut() {
            Some(run) if run.last().is_some_and(|q| q.0 + 1 == p.0) => run.push(*p),
            _ => runs.push(vec![*p]),
        }
    }
    for run in &runs {
        let upper: Vec<String> = run
            .iter()
            .map(|p| format!("{:.1},{:.1}", x(p.0), y(p.1 + p.2)))
            .collect();
        let lower: Vec<String> = run
            .iter()
            .rev()
            .map(|p| format!("{:.1},{:.1}", x(p.0), y(p.1 - p.2)))
            .collect();
        body.push_str(&format!(
            "<polygon points=\"{} {}\" fill=\"#0b3d5c\" fill-opacity=\"0.15\"/>",
            upper.join(" "),
            lower.join(" ")
        ));
        let line: Vec<String> = run
            .iter()
            .map(|p| format!("{:.1},{:.1}", x(p.0), y(p.1)))
            .collect();
        body.push_str(&format!(
            "<polyline points=\"{}\" fill=\"none\" stroke=\"#0b3d5c\" stroke-width=\"2\"/>",
            line.join(" ")
        ));
        for p in run {
            body.push_str(&format!(
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"#0b3d5c\"/>",
                x(p.0),
                y(p.1)
            ));
        }
    }
    let first = series.first().map_or(String::new(), |s| ymd(s.0));
    let last = series.last().map_or(String::new(), |s| ymd(s.0));
    let shown = points.len();
    format!(
        "<svg role=\"img\" aria-labelledby=\"t-{id} d-{id}\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title id=\"t-{id}\">{t}</title><desc id=\"d-{id}\">{shown} of {total} days released, {first} to {last}; the band is the 95% noise interval.</desc>\
         <line x1=\"{pad}\" y1=\"{yb:.1}\" x2=\"{xr:.1}\" y2=\"{yb:.1}\" stroke=\"#8c959f\"/>\
         <line x1=\"{pad}\" y1=\"{pad}\" x2=\"{pad}\" y2=\"{yb:.1}\" stroke=\"#8c959f\"/>\
         <text x=\"2\" y=\"{ytop:.1}\" font-size=\"11\" fill=\"#57606a\">{hi:.1}</text>\
         <text x=\"2\" y=\"{yb:.1}\" font-size=\"11\" fill=\"#57606a\">{lo:.1}</text>\
         <text x=\"{pad}\" y=\"{ylab:.1}\" font-size=\"11\" fill=\"#57606a\">{first}</text>\
         <text x=\"{xr:.1}\" y=\"{ylab:.1}\" font-size=\"11\" fill=\"#57606a\" text-anchor=\"end\">{last}</text>{body}</svg>",
        id = escape(&title.replace(' ', "-")),
        t = escape(title),
        total = series.len(),
        yb = h - pad,
        xr = w - pad,
        ytop = pad + 4.0,
        ylab = h - pad + 16.0,
    )
}

async fn app_page(
    State(d): State<Arc<Dashboard>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<PeriodQuery>,
) -> Response {
    let Some(who) = d.who(&headers) else {
        return Redirect::to("/login").into_response();
    };
    let app = match d.scoring.registry.app(&id) {
        Ok(a) => a,
        Err(e) => return unavailable(&e),
    };
    let Some(app) = app.filter(|a| d.scoring.registry.may_see(&who, a)) else {
        return page(
            StatusCode::FORBIDDEN,
            "Not available",
            "<h1>Not available</h1><p role=\"alert\">This account may not see that application.</p>\
             <p><a href=\"/\">Back to your applications</a></p>",
        );
    };
    let period = match q.period.as_deref() {
        Some("day") => pb::Period::Day,
        Some("week") => pb::Period::Week,
        _ => pb::Period::Days30,
    };
    let d2 = Arc::clone(&d);
    let app_id = app.id.clone();
    let computed = crate::store::spawn_blocking(move || {
        let until = clock::unix_secs_i64();
        let card = d2
            .scoring
            .scorecard(d2.store.as_ref(), &app_id, period, until)?;
        // Trends: one point per day of the last 30, each released under the same rules.
        let (from, to) = period_days(pb::Period::Days30, until);
        let rollups = d2.scoring.rollups(d2.store.as_ref(), &app_id, from, to)?;
        let mut days = Vec::new();
        for day in from..=to {
            let (v, withheld) = released_view(
                &rollups,
                d2.store.as_ref(),
                &app_id,
                day,
                day,
                d2.scoring.min_clinics,
            )?;
            days.push((day, withheld.is_none().then_some(v)));
        }
        Ok::<_, crate::store::StoreError>((card, days))
    })
    .await;
    let Ok(Ok((card, days))) = computed else {
        return page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Unavailable",
            "<h1>Unavailable</h1><p>The scorecard could not be computed; try again shortly.</p>",
        );
    };
    let mut sections = String::new();
    for c in &card.criteria {
        let mut ev = String::new();
        for e in &c.evidence {
            ev.push_str(&format!(
                "<tr><td>{}</td><td>{}</td></tr>",
                escape(&evidence_text(e)),
                e.clinics
            ));
        }
        let ev_table = if ev.is_empty() {
            "<p class=\"note\">No figures released.</p>".to_owned()
        } else {
            format!(
                "<table><caption>Evidence (value ± 95% noise interval)</caption><thead><tr>\
                 <th scope=\"col\">Figure</th><th scope=\"col\">Clinics</th></tr></thead><tbody>{ev}</tbody></table>"
            )
        };
        let series: Vec<(i64, Option<(f64, f64)>)> = days
            .iter()
            .map(|(day, v)| (*day, v.as_ref().and_then(|v| headline(c.criterion, v))))
            .collect();
        let label = format!(
            "{}: {}",
            criterion_name(c.criterion),
            headline_label(c.criterion)
        );
        let rows: String = series
            .iter()
            .map(|(day, p)| match p {
                Some((v, e)) => format!("<tr><td>{}</td><td>{v:.2} ± {e:.2}</td></tr>", ymd(*day)),
                None => format!("<tr><td>{}</td><td>withheld</td></tr>", ymd(*day)),
            })
            .collect();
        let weeks: String = c
            .trend
            .iter()
            .map(|w| {
                format!(
                    "<tr><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>",
                    ymd(w.from.as_ref().map_or(0, |t| day_of(t.seconds))),
                    if w.released {
                        status_class(w.status)
                    } else {
                        ""
                    },
                    if w.released {
                        status_name(w.status)
                    } else {
                        "withheld"
                    },
                    escape(&w.rule_id)
                )
            })
            .collect();
        let weekly = if weeks.is_empty() {
            String::new()
        } else {
            format!(
                "<table><caption>Week by week</caption><thead><tr><th scope=\"col\">Week from</th>\
                 <th scope=\"col\">Status</th><th scope=\"col\">Rule</th></tr></thead><tbody>{weeks}</tbody></table>"
            )
        };
        let watched: String = c
            .rates
            .iter()
            .map(|r| {
                format!(
                    "<li{}><code>{}</code> ({}): {}{}</li>",
                    if r.drift { " class=\"review\"" } else { "" },
                    escape(&r.rule_id),
                    escape(&r.description),
                    if r.drift {
                        "<strong>Marked for review.</strong> "
                    } else {
                        ""
                    },
                    escape(&r.explanation)
                )
            })
            .collect();
        let watched = if watched.is_empty() {
            String::new()
        } else {
            format!("<h3>Watched for drift</h3><ul>{watched}</ul>")
        };
        let review = if c.review {
            "<p role=\"alert\" class=\"review\">A watched rate moved beyond its own recent range: \
             marked for review.</p>"
        } else {
            ""
        };
        sections.push_str(&format!(
            "<section aria-labelledby=\"c{n}\"><h2 id=\"c{n}\">{name} <span class=\"{cls}\">{status}</span></h2>\
             {review}<p>Decided by <code>{rule}</code>. {why}</p>{ev_table}{weekly}{watched}{chart}\
             <details><summary>Daily figures as a table</summary><table><caption>{label}</caption>\
             <thead><tr><th scope=\"col\">Day</th><th scope=\"col\">Value</th></tr></thead><tbody>{rows}</tbody></table></details></section>",
            n = c.criterion,
            name = criterion_name(c.criterion),
            cls = status_class(c.status),
            status = status_name(c.status),
            rule = escape(&c.rule_id),
            why = escape(&c.explanation),
            chart = chart(&label, &series),
            label = escape(&label),
        ));
    }
    let from = card.from.map_or(0, |t| day_of(t.seconds));
    let until = card.until.map_or(0, |t| day_of(t.seconds) - 1);
    page(
        StatusCode::OK,
        &app.name,
        &format!(
            "<p><a href=\"/\">All applications</a></p><h1>{name}</h1>\
             <nav aria-label=\"Period\"><a href=\"?period=day\">Last day</a><a href=\"?period=week\">Last 7 days</a>\
             <a href=\"?period=30d\">Last 30 days</a></nav>\
             <p class=\"note\">{from} to {until}: <strong>{clinics} clinic(s)</strong> contributed{released}. \
             Every figure was noised in the clinic before it left (± is the 95% interval of that noise); \
             days and periods with fewer than {min} clinics, or one clinic away from figures already \
             shown, are withheld.</p>{sections}",
            name = escape(&app.name),
            from = ymd(from),
            until = ymd(until),
            clinics = card.clinics,
            released = if card.released {
                ""
            } else {
                " (figures withheld)"
            },
            min = d.scoring.min_clinics,
        ),
    )
}
