//! `scimguard report [--since T] [--until T] [--now T] [--stale-after 90d] [--format text|json|html]
//! [--out FILE] [--privileged-pattern RE] LOG...`: reads audit logs line by line (plain or gzip, told
//! apart by their first bytes), feeds `scimguard::report`, and writes one rendering.
//!
//! The shell's part: files, decompression, the clock (only when neither `--now` nor `--until` is
//! given), the progress bar and messages on stderr. Exit 0 when the report was written (malformed
//! lines are counted in it, not failures); 2 on a usage error, or when an input could not be opened
//! or read to its end (the report is still written from what could be read).
use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use flate2::read::MultiGzDecoder;
use indicatif::{ProgressBar, ProgressStyle};
use scimguard::report::{
    self as rep, when, Aggregator, Options, Place, DEFAULT_PRIVILEGED_PATTERN, MALFORMED_SAMPLES,
};

/// A line longer than this is skipped as malformed (a stuck writer must not exhaust memory).
const MAX_LINE: usize = 64 << 20;
/// Inputs at least this large get a progress bar (on a terminal).
const PROGRESS_FROM: u64 = 64 << 20;

#[derive(clap::Args)]
pub struct ReportArgs {
    /// Audit logs: JSON lines (records, collector batches), plain or gzip; `-` reads standard input.
    #[arg(required = true, value_name = "LOG")]
    pub logs: Vec<PathBuf>,
    /// List changes from this instant on (RFC 3339 or a date); state still uses the whole trail.
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// Review the state as of this instant: later records are ignored.
    #[arg(long, value_name = "T")]
    pub until: Option<String>,
    /// The instant stale accounts are measured against (default: --until, else the current time).
    #[arg(long, value_name = "T")]
    pub now: Option<String>,
    /// An active account with no access for longer than this is stale (w, d, h, m, s: `90d`, `1d12h`).
    #[arg(long, value_name = "DURATION", default_value = "90d")]
    pub stale_after: String,
    #[arg(long, value_enum, default_value = "text")]
    pub format: ReportFormat,
    /// Write the report here instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Group names and role/entitlement values matching this regex are privileged.
    #[arg(long, value_name = "RE", default_value = DEFAULT_PRIVILEGED_PATTERN)]
    pub privileged_pattern: String,
    /// Entries kept per user or group timeline (older ones are counted, not listed).
    #[arg(long, value_name = "N", default_value_t = 25)]
    pub timeline_cap: usize,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
    Html,
}

pub fn run(a: &ReportArgs) -> u8 {
    let opts = match options(a) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("scimguard report: {e}");
            return 2;
        }
    };
    let mut agg = Aggregator::new(opts);
    let progress = progress_bar(&a.logs);
    let mut reporter = Reporter::default();
    let mut code = 0;
    for log in &a.logs {
        if let Err(e) = read_log(log, &mut agg, &progress, &mut reporter) {
            eprintln!("scimguard report: {e}");
            code = 2;
        }
    }
    progress.finish_and_clear();
    reporter.finish();
    let report = agg.finish();
    let text = match a.format {
        ReportFormat::Text => rep::render_text(&report),
        ReportFormat::Json => serde_json::to_string_pretty(&report)
            .map(|s| s + "\n")
            .unwrap_or_default(),
        ReportFormat::Html => rep::render_html(&report),
    };
    if let Err(e) = write_out(a.out.as_deref(), &text) {
        eprintln!("scimguard report: {e}");
        return 2;
    }
    if let Some(out) = &a.out {
        let s = &report.summary;
        eprintln!(
            "wrote {}: {} users ({} active), {} privileged accounts, {} stale, {} high-risk writes ({} blocked), {} malformed lines",
            out.display(),
            s.users_known,
            s.users_active,
            s.privileged_principals,
            s.stale_accounts,
            s.high_risk_writes,
            s.high_risk_blocked,
            report.input.stats.malformed_lines
        );
    }
    code
}

fn options(a: &ReportArgs) -> Result<Options, String> {
    let instant = |flag: &str, v: &Option<String>| -> Result<Option<u64>, String> {
        v.as_deref()
            .map(|s| {
                when::parse_instant(s).ok_or(format!(
                    "--{flag}: `{s}` is not an RFC 3339 time or a date (2026-11-28)"
                ))
            })
            .transpose()
    };
    let since = instant("since", &a.since)?;
    let until = instant("until", &a.until)?;
    let now = match (instant("now", &a.now)?, until) {
        (Some(n), _) | (None, Some(n)) => n,
        (None, None) => wall_clock(),
    };
    let stale_after =
        when::parse_duration(&a.stale_after).map_err(|e| format!("--stale-after: {e}"))?;
    let mut o = Options::new(now).with_pattern(&a.privileged_pattern)?;
    o.since_ms = since;
    o.until_ms = until;
    o.stale_after_ms = stale_after;
    o.timeline_cap = a.timeline_cap.max(1);
    Ok(o)
}

fn wall_clock() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Prints the first malformed lines as they come, then how many more.
#[derive(Default)]
struct Reporter {
    malformed: u64,
}

impl Reporter {
    fn malformed(&mut self, place: &Place, reason: &str) {
        self.malformed += 1;
        if self.malformed <= MALFORMED_SAMPLES as u64 {
            eprintln!("{}:{}: skipped: {reason}", place.source, place.line);
        }
    }

    fn finish(&self) {
        if self.malformed > MALFORMED_SAMPLES as u64 {
            eprintln!(
                "… and {} more malformed lines ({} in all)",
                self.malformed - MALFORMED_SAMPLES as u64,
                self.malformed
            );
        }
    }
}

fn progress_bar(logs: &[PathBuf]) -> ProgressBar {
    let total: u64 = logs
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    if !io::stderr().is_terminal() || total < PROGRESS_FROM {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Reads one log to its end, feeding every line.
fn read_log(
    path: &Path,
    agg: &mut Aggregator,
    progress: &ProgressBar,
    rep: &mut Reporter,
) -> Result<(), String> {
    let name = path.display().to_string();
    progress.set_message(name.clone());
    let raw: Box<dyn Read> = if path.as_os_str() == "-" {
        Box::new(io::stdin().lock())
    } else {
        Box::new(File::open(path).map_err(|e| format!("cannot open `{name}`: {e}"))?)
    };
    let mut reader = BufReader::with_capacity(1 << 16, progress.wrap_read(raw));
    let gzip = reader
        .fill_buf()
        .map_err(|e| format!("cannot read `{name}`: {e}"))?
        .starts_with(&[0x1f, 0x8b]);
    let mut lines: Box<dyn BufRead> = if gzip {
        Box::new(BufReader::with_capacity(
            1 << 16,
            MultiGzDecoder::new(reader),
        ))
    } else {
        Box::new(reader)
    };
    let mut buf = Vec::new();
    let mut place = Place {
        source: name.clone(),
        line: 0,
    };
    loop {
        buf.clear();
        let read = read_line(&mut lines, &mut buf)
            .map_err(|e| format!("`{name}` line {}: read error: {e}", place.line + 1))?;
        let Some(too_long) = read else { return Ok(()) };
        place.line += 1;
        if too_long {
            agg.undecodable_line(&place, "line longer than 64 MiB");
            rep.malformed(&place, "line longer than 64 MiB");
            continue;
        }
        match std::str::from_utf8(trim_newline(&buf)) {
            Ok(line) => {
                if let Some(reason) = agg.feed_line(&place, line) {
                    rep.malformed(&place, &reason);
                }
            }
            Err(_) => {
                agg.undecodable_line(&place, "not UTF-8");
                rep.malformed(&place, "not UTF-8");
            }
        }
    }
}

/// Reads up to a newline into `buf`, keeping at most `MAX_LINE` bytes. `None` at the end of input;
/// `Some(true)` when the line was longer and its rest was dropped.
fn read_line(r: &mut dyn BufRead, buf: &mut Vec<u8>) -> io::Result<Option<bool>> {
    let mut any = false;
    let mut too_long = false;
    loop {
        let chunk = r.fill_buf()?;
        if chunk.is_empty() {
            return Ok(any.then_some(too_long));
        }
        any = true;
        let (take, done) = match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        let room = MAX_LINE.saturating_sub(buf.len());
        too_long |= take > room;
        buf.extend_from_slice(chunk.get(..take.min(room)).unwrap_or_default());
        r.consume(take);
        if done {
            return Ok(Some(too_long));
        }
    }
}

fn trim_newline(b: &[u8]) -> &[u8] {
    let b = b.strip_suffix(b"\n").unwrap_or(b);
    b.strip_suffix(b"\r").unwrap_or(b)
}

fn write_out(out: Option<&Path>, text: &str) -> Result<(), String> {
    match out {
        Some(path) => std::fs::write(path, text)
            .map_err(|e| format!("cannot write `{}`: {e}", path.display())),
        None => {
            let mut stdout = io::stdout().lock();
            match stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
            {
                Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
                    Err(format!("cannot write to standard output: {e}"))
                }
                _ => Ok(()),
            }
        }
    }
}
