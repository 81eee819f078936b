//! `maillage import` and `maillage export`: the open-data world in and out.
//!
//! Import reads here (maillage-import) and the node signs and stores, a
//! batch at a time: every file is opened (and every address fetched) before
//! anything is sent, then a file's rows are read a part at a time while the
//! node stores the rows before, so a large catalogue shows its progress and
//! a report per row. Export lists the node's current records and writes the same
//! documents the node's HTTP export serves (maillage-dcat keeps only public
//! records).

use std::collections::{HashMap, VecDeque};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use maillage_import::{Format, Options, Parsed};
use maillage_proto::v1::import_outcome::Result as R;
use maillage_proto::v1::{
    ImportItem, ImportRequest, ListRequest, StatusRequest, WithdrawMissingRequest,
};
use maillage_record::{Record, envelope, wire};
use prost::Message;
use serde_json::json;

use crate::connect::{NodeConn, explain, node_config};

/// Drafts per Import call: the most the node takes in one (it stores each
/// call in one synced write, so fewer calls mean fewer syncs: 1,000 rather
/// than 500 took the SCDL import from 21,600 to 22,400 rows/s).
const BATCH: usize = 1_000;
/// Bytes of drafts per Import call: under the admin socket's 16 MiB limit
/// whatever the rows hold.
const BATCH_BYTES: usize = 8 << 20;
/// Import calls in flight at once: the node stores one batch (one synced
/// write) while it signs the next ones on every core. Three keep 2 cores
/// busier than two (22,000 rows/s instead of 20,000).
const IN_FLIGHT: usize = 3;
/// Rows of a file made drafts at a time, while the previous ones are sent.
const PART_ROWS: usize = 5_000;
/// Bytes of record_ids per WithdrawMissing message.
const KEEP_BYTES: usize = 1 << 20;

/// Splits `items` into batches of at most `count` items and, past the first
/// item of each, `bytes` bytes as `size` measures them.
fn batches<T>(items: &[T], count: usize, bytes: usize, size: impl Fn(&T) -> usize) -> Vec<&[T]> {
    let mut out = Vec::new();
    let (mut start, mut used) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        let n = size(item);
        if i > start && (i - start == count || used + n > bytes) {
            out.push(&items[start..i]);
            (start, used) = (i, 0);
        }
        used += n;
    }
    if start < items.len() {
        out.push(&items[start..]);
    }
    out
}

/// One line of the import report: a problem of a refused row (`warning`:
/// alone it would not have refused it), or a warning of an imported row.
struct Rejected {
    file: String,
    line: usize,
    what: String,
    warning: bool,
}

/// A source of an import, read before anything is sent.
enum Source {
    /// An address's pages, each read whole, named by its address.
    Pages(Vec<(String, Parsed)>),
    /// A file opened: its rows become drafts as the import goes.
    File(String, maillage_import::Opened),
}

/// An Import call on its way: the (file, line) of each of its drafts, and
/// its answer to come.
struct InFlight {
    rows: Vec<(String, usize)>,
    answer: tokio::task::JoinHandle<
        Result<tonic::Response<maillage_proto::v1::ImportResponse>, tonic::Status>,
    >,
}

type Answer = Result<
    Result<tonic::Response<maillage_proto::v1::ImportResponse>, tonic::Status>,
    tokio::task::JoinError,
>;

/// What the import waits for comes first: a part read, or an answer.
enum Next {
    Part(Option<(String, Parsed)>),
    Answer(Answer),
}

/// The answer to the oldest call in flight; never, when none is.
async fn oldest(in_flight: &mut VecDeque<InFlight>) -> Answer {
    match in_flight.front_mut() {
        Some(front) => (&mut front.answer).await,
        None => std::future::pending().await,
    }
}

/// Sends the next batch of `pending`: at most BATCH drafts and, past the
/// first, BATCH_BYTES bytes.
fn send_batch(
    admin: &maillage_proto::v1::admin_client::AdminClient<tonic::transport::Channel>,
    pending: &mut VecDeque<(String, usize, Record)>,
) -> InFlight {
    let (mut items, mut rows, mut bytes) = (Vec::new(), Vec::new(), 0);
    while let Some((_, line, draft)) = pending.front() {
        let item = ImportItem {
            line: *line as u64,
            draft: Some(wire::payload_to_proto(draft)),
        };
        let n = item.encoded_len();
        if !items.is_empty() && (items.len() == BATCH || bytes + n > BATCH_BYTES) {
            break;
        }
        bytes += n;
        items.push(item);
        let (file, line, _) = pending.pop_front().expect("looked at above");
        rows.push((file, line));
    }
    let mut admin = admin.clone();
    InFlight {
        rows,
        answer: tokio::spawn(async move { admin.import(ImportRequest { items }).await }),
    }
}

/// Where the rows of a part go as they are read.
struct Accounts<'a> {
    rejected: &'a mut Vec<Rejected>,
    warned: &'a mut Vec<Rejected>,
    notes: &'a mut Vec<String>,
    pending: &'a mut VecDeque<(String, usize, Record)>,
    keep: &'a mut HashMap<String, (String, usize)>,
}

/// Reports a part's refused rows and warnings, and queues its drafts; a
/// record_id read before, in any file of this run, is refused.
fn account(name: String, parsed: Parsed, to: &mut Accounts<'_>) {
    let Parsed {
        rows: ok,
        errors,
        notes: read_as,
    } = parsed;
    for note in read_as {
        to.notes.push(format!("{name}: {note}"));
    }
    for e in errors {
        to.rejected.push(Rejected {
            file: name.clone(),
            line: e.line,
            what: e.describe(),
            warning: e.warning,
        });
    }
    for row in ok {
        for w in &row.warnings {
            to.warned.push(Rejected {
                file: name.clone(),
                line: w.line,
                what: w.describe(),
                warning: true,
            });
        }
        for rec in row.records {
            if let Some((f, l)) = to.keep.get(&rec.record_id) {
                to.rejected.push(Rejected {
                    file: name.clone(),
                    line: row.line,
                    what: format!(
                        "the same row as {f}:{l} (record_id '{}'): each row may come once",
                        rec.record_id
                    ),
                    warning: false,
                });
                continue;
            }
            to.keep
                .insert(rec.record_id.clone(), (name.clone(), row.line));
            to.pending.push_back((name.clone(), row.line, rec));
        }
    }
}

/// How an import ended, when it ran: the exit status tells them apart.
#[derive(Debug, thiserror::Error)]
pub enum Outcome {
    /// Every row was imported, some read otherwise than written: nothing
    /// lost (exit status 3).
    #[error("{rows} of {total} rows imported with warnings (listed above): nothing was left out")]
    Warnings { rows: usize, total: usize },
    /// Some rows were refused (exit status 2); the others were imported.
    #[error("{rows} of {total} rows refused (listed above); the others were imported")]
    Refused { rows: usize, total: usize },
}

impl Outcome {
    /// The exit status: 2 some rows refused, 3 warnings only (1 is a
    /// failure: nothing imported).
    pub fn exit_status(&self) -> i32 {
        match self {
            Outcome::Refused { .. } => 2,
            Outcome::Warnings { .. } => 3,
        }
    }
}

/// The import options the command line gives.
pub fn import_options(delimiter: Option<&str>) -> anyhow::Result<Options> {
    let delimiter = match delimiter {
        None => None,
        Some("tab" | "\\t" | "\t") => Some(b'\t'),
        Some(d) if d.len() == 1 && d != "\"" && d != "\n" && d != "\r" => Some(d.as_bytes()[0]),
        Some(d) => bail!(
            "--delimiter '{d}' is not a separator: give one ASCII character (such as ';' or \
             ','), or \"tab\""
        ),
    };
    Ok(Options {
        delimiter,
        ..Options::default()
    })
}

/// How sources are read: the import options, and how an address is
/// fetched.
pub struct Reading {
    pub options: Options,
    pub fetcher: maillage_harvest::Fetcher,
}

pub async fn import(
    dir: &Path,
    format: &str,
    files: &[PathBuf],
    source: Option<&str>,
    withdraw_missing: bool,
    reading: &Reading,
    json_out: bool,
) -> anyhow::Result<()> {
    let Reading { options, fetcher } = reading;
    let format = Format::parse(format)?;
    let first = files
        .first()
        .context("give at least one file or address to import")?;
    let source = match source {
        Some(s) => s.to_string(),
        // An address is its own name; a file is named without its folder.
        None if maillage_harvest::is_url(&first.to_string_lossy()) => {
            first.to_string_lossy().into_owned()
        }
        None => first
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .context("give at least one file to import")?,
    };
    // Every file opened and every page of every address fetched and read
    // before anything is sent: a file or page that cannot be read at all
    // imports nothing. A file's rows become drafts while earlier ones are
    // sent (the node signs and stores one batch while the next is read).
    let mut sources: Vec<Source> = Vec::new();
    let mut rows = 0usize;
    for file in files {
        let name = file.display().to_string();
        if maillage_harvest::is_url(&name) {
            let mut pages = Vec::new();
            maillage_harvest::harvest(fetcher, format, &name, &source, options, |page| {
                if !json_out {
                    eprintln!("read {} ({} entries)", page.url, page.parsed.rows.len());
                }
                pages.push((page.url, page.parsed));
            })
            .await
            .with_context(|| format!("cannot import {name}: nothing was imported"))?;
            rows += pages
                .iter()
                .map(|(_, p)| p.rows.len() + p.refused_rows())
                .sum::<usize>();
            sources.push(Source::Pages(pages));
            continue;
        }
        let bytes = std::fs::read(file).with_context(|| format!("cannot read {name}"))?;
        let opened = maillage_import::open(format, &source, &bytes, options)
            .with_context(|| format!("{name} is not a {} file", format.as_str()))?;
        rows += opened.len();
        sources.push(Source::File(name, opened));
    }
    if withdraw_missing && rows == 0 {
        // An empty or truncated file would otherwise withdraw the whole source.
        bail!(
            "no rows were read from {source}: nothing imported, nothing withdrawn (is the file \
             complete?)"
        );
    }
    let conn = NodeConn::open(dir).await?;
    let mut admin = conn.admin();

    // Rows become drafts on their own thread (every core for a large part),
    // a part at a time; at most two parts wait here.
    let (parts_tx, mut parts) = tokio::sync::mpsc::channel::<(String, Parsed)>(2);
    std::thread::spawn(move || {
        for s in sources {
            match s {
                Source::Pages(pages) => {
                    for page in pages {
                        if parts_tx.blocking_send(page).is_err() {
                            return;
                        }
                    }
                }
                Source::File(name, opened) => opened.parts(PART_ROWS, |part| {
                    // The import has stopped when no one receives: the
                    // remaining parts are read for nothing, then dropped.
                    let _ = parts_tx.blocking_send((name.clone(), part));
                }),
            }
        }
    });

    let mut rejected: Vec<Rejected> = Vec::new();
    let mut warned: Vec<Rejected> = Vec::new();
    // How each file was read, when not as plain UTF-8.
    let mut notes: Vec<String> = Vec::new();
    // (file, row line, record draft) read and not yet sent, in source order.
    let mut pending: VecDeque<(String, usize, Record)> = VecDeque::new();
    // record_id → where it was first read, across every file of this run.
    let mut keep: HashMap<String, (String, usize)> = HashMap::new();
    let bar = (!json_out && std::io::stderr().is_terminal() && rows > BATCH)
        .then(|| crate::progress::bar(rows as u64, "rows stored"));
    let (mut created, mut updated, mut unchanged) = (0u64, 0u64, 0u64);
    let (mut read, mut stored) = (0usize, 0usize);
    // IN_FLIGHT batches at once: the node signs and stores some while the
    // next is on its way. Answers are read in the order the batches were sent.
    let mut in_flight: VecDeque<InFlight> = VecDeque::new();
    let mut reading = true;
    loop {
        while in_flight.len() < IN_FLIGHT
            && (pending.len() >= BATCH || (!reading && !pending.is_empty()))
        {
            in_flight.push_back(send_batch(&admin, &mut pending));
        }
        let next = if reading {
            tokio::select! {
                part = parts.recv() => Next::Part(part),
                answer = oldest(&mut in_flight) => Next::Answer(answer),
            }
        } else if let Some(front) = in_flight.front_mut() {
            Next::Answer((&mut front.answer).await)
        } else {
            break;
        };
        match next {
            Next::Part(None) => reading = false,
            Next::Part(Some((name, parsed))) => {
                read += parsed.rows.len() + parsed.refused_rows();
                account(
                    name,
                    parsed,
                    &mut Accounts {
                        rejected: &mut rejected,
                        warned: &mut warned,
                        notes: &mut notes,
                        pending: &mut pending,
                        keep: &mut keep,
                    },
                );
            }
            Next::Answer(answer) => {
                let sent = in_flight.pop_front().expect("an answer came from it").rows;
                let outcomes = answer
                    .context("an import batch was lost")?
                    .map_err(explain)?
                    .into_inner()
                    .outcomes;
                stored += sent.len();
                for ((file, line), o) in sent.into_iter().zip(outcomes) {
                    match R::try_from(o.result) {
                        Ok(R::Created) => created += 1,
                        Ok(R::Updated) => updated += 1,
                        Ok(R::Unchanged) => unchanged += 1,
                        _ => rejected.push(Rejected {
                            file,
                            line,
                            what: format!("record '{}': {}", o.record_id, o.error),
                            warning: false,
                        }),
                    }
                }
            }
        }
        if let Some(bar) = &bar {
            bar.set_position(stored as u64);
            bar.set_message(format!("({read} read)"));
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    rejected.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    // A row refused by the node after reading: its warnings go with it.
    let refused_at: std::collections::BTreeSet<(String, usize)> =
        rejected.iter().map(|r| (r.file.clone(), r.line)).collect();
    let (moved, warned): (Vec<Rejected>, Vec<Rejected>) = warned
        .into_iter()
        .partition(|w| refused_at.contains(&(w.file.clone(), w.line)));
    rejected.extend(moved);
    rejected.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    let refused_rows = refused_at.len();
    let warned_rows = warned
        .iter()
        .map(|w| (&w.file, w.line))
        .collect::<std::collections::BTreeSet<_>>()
        .len();

    // A rejected row may be a record still in the source: withdrawing on a
    // partial import would tombstone it. Only a clean import withdraws.
    let mut withdrawn = Vec::new();
    let mut withdrawn_count = 0;
    let mut withdraw_skipped = false;
    if withdraw_missing {
        if rejected.is_empty() {
            // The record_ids to keep go in as many messages as they need.
            let keep: Vec<String> = keep.into_keys().collect();
            let messages: Vec<WithdrawMissingRequest> =
                batches(&keep, usize::MAX, KEEP_BYTES, |id| id.len() + 3)
                    .into_iter()
                    .enumerate()
                    .map(|(i, ids)| WithdrawMissingRequest {
                        source_format: if i == 0 {
                            format.as_str().into()
                        } else {
                            String::new()
                        },
                        source: if i == 0 {
                            source.clone()
                        } else {
                            String::new()
                        },
                        keep: ids.to_vec(),
                    })
                    .collect();
            let answer = admin
                .withdraw_missing(tokio_stream::iter(messages))
                .await
                .map_err(explain)?
                .into_inner();
            withdrawn = answer.withdrawn;
            withdrawn_count = answer.withdrawn_count;
        } else {
            withdraw_skipped = true;
        }
    }

    let entry = |r: &Rejected| json!({"file": r.file, "line": r.line, "error": r.what, "warning": r.warning});
    if json_out {
        let report = json!({
            "format": format.as_str(), "source": source, "rows": rows,
            "notes": notes,
            "created": created, "updated": updated, "unchanged": unchanged,
            "refused_rows": refused_rows,
            "rejected": rejected.iter().map(entry).collect::<Vec<_>>(),
            "rows_with_warnings": warned_rows,
            "warnings": warned.iter().map(entry).collect::<Vec<_>>(),
            "withdrawn": withdrawn,
            "withdrawn_count": withdrawn_count,
            "withdraw_skipped": withdraw_skipped,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for note in &notes {
            eprintln!("{note}");
        }
        if !rejected.is_empty() {
            eprintln!("refused (not imported):");
            for r in &rejected {
                let tag = if r.warning { "(warning) " } else { "" };
                eprintln!("  {}:{}: {tag}{}", r.file, r.line, r.what);
            }
        }
        if !warned.is_empty() {
            eprintln!("imported with warnings (read otherwise than written, kept as written):");
            for w in &warned {
                eprintln!("  {}:{}: {}", w.file, w.line, w.what);
            }
        }
        println!(
            "{rows} rows from {source} ({}): {created} records created, {updated} updated, \
             {unchanged} unchanged; {refused_rows} rows refused, {warned_rows} with warnings{}",
            format.as_str(),
            if withdraw_missing && !withdraw_skipped {
                format!(", {withdrawn_count} withdrawn")
            } else {
                String::new()
            }
        );
        if withdraw_skipped {
            eprintln!(
                "nothing withdrawn: {refused_rows} rows were refused, and a refused row may be a \
                 record still in the source; fix them and import again with --withdraw-missing"
            );
        }
    }
    // The exit status tells scripts that something was left out (2), or
    // read otherwise than written (3).
    if refused_rows > 0 {
        return Err(Outcome::Refused {
            rows: refused_rows,
            total: rows,
        }
        .into());
    }
    if warned_rows > 0 {
        return Err(Outcome::Warnings {
            rows: warned_rows,
            total: rows,
        }
        .into());
    }
    Ok(())
}

/// What `maillage export` writes.
#[derive(Debug, Clone, Copy)]
pub enum ExportFormat {
    JsonLd,
    Turtle,
    Projects,
}

impl ExportFormat {
    pub fn parse(s: &str) -> anyhow::Result<ExportFormat> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "jsonld" | "json-ld" | "dcat" => ExportFormat::JsonLd,
            "turtle" | "ttl" => ExportFormat::Turtle,
            "projects" | "projects-json" => ExportFormat::Projects,
            other => bail!("unknown export format '{other}'; expected jsonld, turtle or projects"),
        })
    }
}

pub async fn export(
    dir: &Path,
    format: ExportFormat,
    output: Option<&Path>,
    base_url: Option<&str>,
) -> anyhow::Result<()> {
    let conn = NodeConn::open(dir).await?;
    let status = conn
        .admin()
        .status(StatusRequest {})
        .await
        .map_err(explain)?
        .into_inner();
    let base_url = match base_url {
        Some(u) => u.to_string(),
        None => export_base_url(dir)?,
    };
    let mut public = maillage_dcat::PublicRecords::default();
    let mut client = conn.catalogue();
    let mut token = Vec::new();
    // Every current record is read (and verified), public or not.
    let current: u64 = status
        .current_by_kind
        .iter()
        .filter(|k| k.kind != "tombstone")
        .map(|k| k.count)
        .sum();
    let bar = (std::io::stderr().is_terminal() && current > 1_000)
        .then(|| crate::progress::bar(current, "records read"));
    loop {
        let page = client
            .list(ListRequest {
                kind: 0,
                author: vec![],
                limit: 1000,
                page_token: token,
                include_withdrawn: false,
            })
            .await
            .map_err(explain)?
            .into_inner();
        for entry in page.entries {
            let Some(env) = entry.envelope else { continue };
            // Verified again: what leaves the node in a file is what was signed.
            let rec = envelope::verify(&env)
                .with_context(|| format!("record {} does not verify", hex::encode(&entry.id)))?;
            public.add(rec.author().to_hex(), rec.record().clone());
            if let Some(bar) = &bar {
                bar.inc(1);
            }
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let info =
        maillage_dcat::CatalogInfo::for_node(&status.organisation_name, &status.siren, &base_url);
    let text = match format {
        ExportFormat::JsonLd => {
            serde_json::to_string_pretty(&public.catalog(&info, None).to_jsonld())?
        }
        ExportFormat::Turtle => public.catalog(&info, None).to_turtle(),
        ExportFormat::Projects => serde_json::to_string_pretty(&public.projects_json())?,
    };
    match output {
        Some(path) => std::fs::write(path, text + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => println!("{text}"),
    }
    Ok(())
}

/// The base of exported IRIs: the config's node.public_url, else
/// http://<node.http_listen>; the same the node's HTTP export uses.
fn export_base_url(dir: &Path) -> anyhow::Result<String> {
    let (path, table) = node_config(dir)?;
    let node = table.get("node");
    let get = |k: &str| {
        node.and_then(|n| n.get(k))
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    if let Some(url) = get("public_url") {
        return Ok(url);
    }
    if let Some(listen) = get("http_listen") {
        return Ok(format!("http://{listen}"));
    }
    bail!(
        "record IRIs need a base URL: set node.public_url (or node.http_listen) in {}, or pass --base-url",
        path.display()
    )
}
