//! `maillage`: the operator's and member's command-line tool. It reaches a node
//! through its directory (`--dir` or `MAILLAGE_DIR`) and the admin socket there.
//! It never links the node: no RocksDB in the CLI.

mod aggregate;
mod backup;
mod collection;
mod connect;
mod init;
mod interop;
mod members;
mod monitor;
mod peers;
mod progress;
mod records;
mod search;
mod status;
mod tokens;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

// An import turns every row of a file into records on several threads at
// once: many small allocations, which mimalloc serves with less contention
// than glibc's malloc (as in the node).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "maillage",
    version,
    about = "Run and query a maillage node: signed data catalogues and AI projects of French collectivities",
    after_help = "Exit status: 0 done; 1 failed (the node refused, could not be reached, bad input: \
                  the message says which); import: 2 some rows refused, 3 imported with warnings; \
                  check: 1 WARNING, 2 CRITICAL, 3 UNKNOWN. With --json, errors are JSON on \
                  standard error: {\"error\", \"causes\", \"exit_status\"}.\n\
                  Guide d'exploitation : /usr/share/doc/maillage/guide-exploitation.md"
)]
struct Cli {
    /// The node directory (holds maillage.toml); default: the current
    /// directory if it holds one, else /etc/maillage/maillage.toml (a
    /// packaged node).
    #[arg(long, global = true, env = "MAILLAGE_DIR")]
    dir: Option<PathBuf>,
    /// The node's config file, when it is not in the node directory
    /// (/etc/maillage/maillage.toml). With `init`: where to write it.
    #[arg(long, global = true, env = "MAILLAGE_CONFIG")]
    config: Option<PathBuf>,
    /// Print JSON for scripts instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a node directory: config, organisation key, signed Organisation record.
    Init {
        /// The organisation's SIREN (9 digits).
        #[arg(long)]
        siren: String,
        /// The organisation's official name.
        #[arg(long)]
        name: String,
        /// gRPC address; default: a free port on 127.0.0.1.
        #[arg(long)]
        grpc_listen: Option<SocketAddr>,
        /// The portal's HTTP address (e.g. 127.0.0.1:8080, behind your TLS
        /// reverse proxy); default: no portal.
        #[arg(long)]
        http_listen: Option<SocketAddr>,
    },
    /// Write the man pages and shell completions into DIR (the package
    /// installs them).
    #[command(hide = true)]
    GenerateDocs {
        #[arg(value_name = "DIR")]
        out: PathBuf,
    },
    /// Back up the running node into DIR (a new directory the node's user
    /// may write): a consistent copy of the store (records, peers, trust,
    /// tokens), the config and the organisation's record. Writes go on
    /// meanwhile. The key stays out unless --with-key: keep it apart.
    Backup {
        /// The backup's directory, new.
        #[arg(value_name = "DIR")]
        to: PathBuf,
        /// Copy the organisation's private key into the backup too.
        #[arg(long)]
        with_key: bool,
    },
    /// Make a node directory from a backup (with the node stopped, or
    /// into a new directory): the store, the config (its paths made
    /// relative to the new directory) and the organisation's record; the
    /// key from --key, the backup, or the node directory given. The
    /// restored node signs nothing until it has synced with each of its
    /// peers.
    Restore {
        /// The backup's directory (from `maillage backup` or `[backup]`).
        backup: PathBuf,
        /// The new node directory, empty or absent; default: the node
        /// directory given (--dir).
        #[arg(long)]
        into: Option<PathBuf>,
        /// The organisation's key file, if not in the backup.
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Sign a JSON record with the organisation key and store it; prints its id.
    Publish {
        file: PathBuf,
        /// FILE is an envelope its author already signed (as `get --raw` writes).
        #[arg(long)]
        signed: bool,
    },
    /// Withdraw one of this node's records: signs a withdrawal (tombstone)
    /// for the audience of what it withdraws.
    Withdraw {
        record_id: String,
        /// Why, for those who held it ("erreur de saisie", "données obsolètes").
        #[arg(long, default_value = "retiré par son auteur")]
        reason: String,
    },
    /// Sign a JSON record offline with a key file, without a node (a
    /// committee's root key kept off the server); publish the envelope it
    /// writes with `maillage publish --signed` on a node that allows the key.
    Sign {
        file: PathBuf,
        /// The key file (64 hex characters, readable by its owner only).
        #[arg(long)]
        key: PathBuf,
        /// Where to write the envelope; default: FILE with .envelope.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// This node's organisation key.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Show one record: by id (any version), or its current version by
    /// AUTHOR_KEY/record_id or one of this node's record_ids.
    Get {
        /// An id (64 hex characters), AUTHOR_KEY/record_id, or a record_id.
        id: String,
        /// Write the signed envelope's bytes (for `maillage verify`).
        #[arg(long, conflicts_with = "json")]
        raw: bool,
    },
    /// List current records.
    List {
        /// Only records of this kind.
        #[arg(long, value_parser = kinds())]
        kind: Option<String>,
        /// Only records by this author key (64 hex characters).
        #[arg(long)]
        author: Option<String>,
        /// Include withdrawn records.
        #[arg(long)]
        all: bool,
    },
    /// Every version of a record.
    History {
        record_id: String,
        /// The author key; default: this node's organisation.
        #[arg(long)]
        author: Option<String>,
    },
    /// Node identity, record counts, uptime, store size.
    Status,
    /// Check a signed envelope offline (from `maillage get --raw`).
    Verify { file: PathBuf },
    /// Peers this node replicates with over mutual TLS.
    #[command(subcommand)]
    Peer(PeerCommand),
    /// Reconcile with one peer (or all) now, and report.
    Sync {
        /// A peer name; default: every peer.
        name: Option<String>,
    },
    /// Authors whose records this node accepts from peers.
    #[command(subcommand)]
    Trust(TrustCommand),
    /// Read tokens for scripts: a bearer token for the HTTP JSON endpoints
    /// (/search, /stats, a record as JSON) that sees what an agent of one
    /// organisation sees on the portal.
    #[command(subcommand)]
    Token(TokenCommand),
    /// The collectivities this node gathers as a chef de file or a committee
    /// (the scope its membership gives it; else its own territory), or those
    /// of one territory: which run a node, what this node holds of each,
    /// which have no catalogue yet.
    Members {
        /// A territory instead: 31555, an EPCI's SIREN, dep:31, reg:76.
        #[arg(long)]
        territory: Option<String>,
    },
    /// Signed statistics of a territory: publish them (computed from the
    /// records this node holds there, or combined from other aggregates),
    /// or verify one against what this node holds.
    #[command(subcommand)]
    Aggregate(AggregateCommand),
    /// Records agents proposed on the portal: list them, accept one (the
    /// node signs and publishes it on behalf of the agent's organisation)
    /// or refuse it.
    #[command(subcommand)]
    Proposals(ProposalsCommand),
    /// Who read what beyond the public: each time a signed-in agent or a
    /// read token was shown a record that is not public (kept 90 days).
    AccessLog {
        /// How far back.
        #[arg(long, default_value = "7d")]
        since: String,
        /// One organisation's agents and tokens only.
        #[arg(long)]
        siren: Option<String>,
        /// Lines at most.
        #[arg(long, default_value_t = 1000)]
        limit: u32,
    },
    /// Records from peers waiting for their author to be trusted.
    #[command(subcommand)]
    Quarantine(QuarantineCommand),
    /// Import what a collectivity already publishes: FORMAT is scdl (SCDL
    /// catalogue CSV), etalab (schema-catalogue-donnees CSV), bibliotheque-ia
    /// (the bibliothèque des projets IA CSV export), dcat (DCAT-AP in
    /// JSON-LD, Turtle or RDF/XML), udata (data.gouv.fr's API) or ckan
    /// (package_search). Give files, or addresses (https://…): an address is
    /// fetched and followed page by page. Tables may be CSV (UTF-8, UTF-16 or Windows-1252;
    /// ',', ';' or tab) or spreadsheets (.xlsx, .xls, .ods: the first sheet).
    /// Re-importing updates records, never duplicates them.
    /// A row that cannot become a correct record is refused; a value outside
    /// a vocabulary, or a note where an address is expected, is kept as
    /// written with a warning. Exit status: 0 every row imported as written,
    /// 3 imported with warnings (nothing lost), 2 some rows refused, 1 failure.
    Import {
        #[arg(value_parser = import_formats(), ignore_case = true)]
        format: String,
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The name of this source (records are matched on it on re-import;
        /// default: the first file's name).
        #[arg(long)]
        source: Option<String>,
        /// Withdraw (tombstone) records of this source that it no longer lists.
        #[arg(long)]
        withdraw_missing: bool,
        /// A CSV's separator (one character; "tab" for a tab); default: the
        /// one its header uses most among ';', ',' and tab.
        #[arg(long, value_name = "CHAR")]
        delimiter: Option<String>,
        /// For an address: seconds one request may take, connection to last
        /// byte (it is tried 3 more times if it fails or times out).
        #[arg(long, value_name = "SECONDS", default_value_t = 60)]
        timeout: u64,
    },
    /// Write the node's public catalogue as a harvester sees it: DCAT-AP
    /// JSON-LD (default), Turtle, or the public projects as JSON.
    Export {
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonld)]
        format: ExportFormat,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// The base of record IRIs (default: node.public_url, else
        /// http://<node.http_listen>).
        #[arg(long)]
        base_url: Option<String>,
    },
    /// Search the federated catalogue this node holds: ranked results with
    /// facet counts. Accents, case and plurals do not matter.
    Search {
        /// Words to look for; none for every record the filters keep.
        words: Vec<String>,
        #[command(flatten)]
        filters: search::FilterArgs,
        /// Results page (20 per page).
        #[arg(long, default_value_t = 1)]
        page: u32,
    },
    /// Counts for a territory: records by kind, theme, status, organisation
    /// or département; for AI projects, status, risk and budget distributions
    /// and the sums of their measured energy and emissions.
    Stats {
        #[command(flatten)]
        filters: search::FilterArgs,
        /// What to count by (quarter: when a record began, a project's
        /// start, a dataset's issue).
        #[arg(long, value_enum, default_value_t = StatsBy::Kind)]
        by: StatsBy,
    },
    /// Rebuild the search index from the store (in the background).
    Reindex {
        /// Wait until it is done, with a progress bar.
        #[arg(long)]
        wait: bool,
    },
    /// Check the node as monitoring tools do (Centreon, Nagios, Zabbix):
    /// one line "MAILLAGE OK - … | perfdata" and exit status 0 OK, 1
    /// WARNING, 2 CRITICAL (a problem, or the node down), 3 UNKNOWN (the
    /// check could not tell). Without --health: verify the whole store and
    /// search index (every signature again, every table against the
    /// others, every search document against its record; long).
    Check {
        /// Only the node's state (peers, index, conflicts, restore,
        /// snapshots, harvests): cheap, for every minute.
        #[arg(long)]
        health: bool,
    },
    /// Sources the node harvests by itself ([[harvest]] in its config);
    /// `maillage status` shows their last runs.
    #[command(subcommand)]
    Harvest(HarvestCommand),
    /// Curated, signed lists of records ("Projets IA de la métropole").
    #[command(subcommand)]
    Collection(CollectionCommand),
}

/// What `export` writes.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum ExportFormat {
    /// DCAT-AP 3.0 in JSON-LD.
    Jsonld,
    /// DCAT-AP 3.0 in Turtle.
    Turtle,
    /// The public AI projects as JSON.
    Projects,
}

/// What `stats` counts by.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum StatsBy {
    Kind,
    Theme,
    Status,
    Org,
    Territory,
    Quarter,
}

/// Who may see a collection.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum ListVisibility {
    Public,
    Federation,
}

/// The name clap knows a value by (what the node and the functions take).
fn value_name(v: impl clap::ValueEnum) -> String {
    v.to_possible_value()
        .expect("no variant is skipped")
        .get_name()
        .to_string()
}

/// Every record kind, as `--kind` takes it: listed in --help, completed by
/// the shell.
pub(crate) fn kinds() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(maillage_record::Kind::ALL.map(|k| k.as_str()))
}

/// Every import format by its name, with the other names each answers to
/// (hidden from --help, still accepted).
fn import_formats() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(maillage_import::Format::ALL.map(|f| {
        clap::builder::PossibleValue::new(f.cli_name()).aliases(f.aliases().iter().copied())
    }))
}

#[derive(Subcommand)]
enum CollectionCommand {
    /// Create an empty collection signed by this node's organisation.
    Create {
        /// Its record_id, e.g. "projets-ia-metropole".
        record_id: String,
        #[arg(long)]
        title: String,
        #[arg(long)]
        description: Option<String>,
        #[arg(long, value_enum, default_value_t = ListVisibility::Public)]
        visibility: ListVisibility,
    },
    /// Add records: by id (as `maillage search` shows it), AUTHOR_KEY/record_id,
    /// or the record_id of one of this node's records.
    Add {
        record_id: String,
        #[arg(required = true)]
        items: Vec<String>,
    },
    /// Remove records, named as for `add`.
    Remove {
        record_id: String,
        #[arg(required = true)]
        items: Vec<String>,
    },
    /// A collection and its items.
    Show {
        record_id: String,
        /// The collection's author, if not this node (64 hex characters).
        #[arg(long)]
        author: Option<String>,
    },
}

#[derive(Subcommand)]
enum PeerCommand {
    /// Pin a peer: its address and public key (from its `maillage status`).
    Add {
        name: String,
        /// https://host:port, the peer's node.grpc_listen.
        url: String,
        /// The peer's public key (64 hex characters).
        #[arg(long)]
        key: String,
        /// The peer organisation's SIREN, which you vouch for: records
        /// restricted to it are then served to the peer. Not needed when a
        /// trusted Membership names the peer.
        #[arg(long)]
        siren: Option<String>,
    },
    /// Pinned peers and their replication state.
    List,
    /// Unpin a peer.
    Remove { name: String },
}

#[derive(Subcommand)]
enum AggregateCommand {
    /// Compute, sign and publish the aggregate of a territory (a new
    /// version of `aggregate-<territory>[-<period>]`); prints its record id.
    Publish {
        /// 31, dep:31, reg:76, an EPCI's SIREN, a commune's INSEE code;
        /// "france" for a national roll-up.
        #[arg(long)]
        territory: String,
        /// A year (2026) or a quarter (2026-T3): the records as they stood
        /// at its end. Default: now.
        #[arg(long)]
        period: Option<String>,
        /// A roll-up: the record id of an aggregate to combine (repeat, or
        /// separate with commas). Without it, the aggregate is computed
        /// from records.
        #[arg(long, value_delimiter = ',')]
        combine: Vec<String>,
    },
    /// Recompute an aggregate from what this node holds: match, or what
    /// differs and why (exit status 1).
    Verify {
        /// The aggregate's record id (64 hex characters).
        id: String,
    },
}

#[derive(Subcommand)]
enum ProposalsCommand {
    /// Those waiting (all with --all).
    List {
        #[arg(long)]
        all: bool,
    },
    /// Sign and publish it, on behalf of the proposing organisation.
    Accept { id: String },
    /// Refuse it; the agent's organisation sees the reason.
    Refuse {
        id: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Make a token; it is printed once (the node keeps its hash).
    Create {
        /// The organisation whose view the token has.
        #[arg(long)]
        siren: String,
        /// Who uses it ("SIG de Colomiers").
        #[arg(long)]
        name: String,
        /// How long it lasts (at most two years).
        #[arg(long, default_value = "90d")]
        expires: String,
    },
    /// Every token, expired ones included (never their secret).
    List,
    /// Refuse a token from now on.
    Revoke { id: String },
}

#[derive(Subcommand)]
enum TrustCommand {
    /// Trust an author key as a root.
    AddRoot {
        key: String,
        /// Who this is, for the record ("CTD 31").
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Trusted roots.
    List,
    /// Stop trusting a root (records already accepted stay).
    Remove { key: String },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Hand the node's key over to a new one: the catalogue is signed again
    /// with it, the former key signs the succession that peers follow, and
    /// the new key replaces organisation.key. Restart the node afterwards.
    Rotate,
    /// Consent, as the holder of a new key, to succeed a lost one: prints
    /// the `successor_signature` the committee puts in the `succession`
    /// record it publishes (offline: no node is asked).
    Consent {
        /// The lost key (64 hex characters).
        predecessor: String,
        /// The new key's file.
        #[arg(long)]
        key: PathBuf,
    },
}

#[derive(Subcommand)]
enum HarvestCommand {
    /// Run the harvest NAME now, and report when it is done (exit status 1
    /// if the source could not be read).
    Run { name: String },
}

#[derive(Subcommand)]
enum QuarantineCommand {
    /// List quarantined records, with their size and age, and the limits.
    List {
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Drop waiting records: each WHAT is a record id, or an author key (all
    /// its records). Dropped records are forgotten; a peer may send them again.
    Drop {
        #[arg(required = true, value_name = "WHAT")]
        what: Vec<String>,
    },
    /// Look through the quarantine again now: records whose author is
    /// trusted are verified and stored.
    Release,
    /// Drop every waiting record, or those that came longer ago than
    /// --older-than (e.g. "7days").
    Purge {
        #[arg(long, value_name = "DURATION")]
        older_than: Option<String>,
    },
}

fn main() {
    // Like other Unix tools: `maillage list | head` ends quietly when head
    // closes the pipe, instead of panicking on a failed print.
    // SAFETY: called first thing, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let json = cli.json;
    if let Err(e) = run(cli) {
        // A monitoring check said its state already: its status alone.
        if let Some(not_ok) = e.downcast_ref::<monitor::NotOk>() {
            std::process::exit(not_ok.exit_status());
        }
        // An import that ran, with rows refused or warned: its own status.
        if let Some(outcome) = e.downcast_ref::<interop::Outcome>() {
            eprintln!("{outcome}");
            std::process::exit(outcome.exit_status());
        }
        if json {
            // Scripts read errors as they read answers.
            eprintln!(
                "{}",
                serde_json::json!({
                    "error": e.to_string(),
                    "causes": e.chain().skip(1).map(ToString::to_string).collect::<Vec<_>>(),
                    "exit_status": 1,
                })
            );
            std::process::exit(1);
        }
        // ripgrep style: one line per cause, lowercase, no backtrace.
        eprintln!("error: {e}");
        for cause in e.chain().skip(1) {
            eprintln!("  caused by: {cause}");
        }
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let json = cli.json;
    if let Command::Init {
        siren,
        name,
        grpc_listen,
        http_listen,
    } = &cli.command
    {
        let dir = cli.dir.clone().unwrap_or_else(|| PathBuf::from("."));
        return init::init(
            init::Init {
                dir: &dir,
                config: cli.config.as_deref(),
                siren,
                name,
                grpc_listen: *grpc_listen,
                http_listen: *http_listen,
            },
            json,
        );
    }
    if let Command::GenerateDocs { out } = &cli.command {
        return generate_docs(out);
    }
    if let Command::Restore { backup, into, key } = &cli.command {
        // The node whose key may serve: the one the CLI would talk to.
        let node = (cli.dir.is_some() || cli.config.is_some() || key.is_none())
            .then(|| connect::locate(cli.config.clone(), cli.dir.clone()));
        return backup::restore(
            backup,
            into.as_deref().or(cli.dir.as_deref()),
            key.as_deref(),
            node.as_deref(),
            json,
        );
    }
    let dir = connect::locate(cli.config, cli.dir);
    match cli.command {
        Command::Init { .. } | Command::Restore { .. } | Command::GenerateDocs { .. } => {
            unreachable!("handled above")
        }
        Command::Verify { file } => records::verify(&file, json),
        Command::Sign { file, key, out } => records::sign_offline(&file, &key, out, json),
        Command::Key(KeyCommand::Consent { predecessor, key }) => {
            records::key_consent(&predecessor, &key, json)
        }
        command => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                match command {
                    Command::Publish { file, signed } => {
                        records::publish(&dir, &file, signed, json).await
                    }
                    Command::Get { id, raw } => records::get(&dir, &id, raw, json).await,
                    Command::Withdraw { record_id, reason } => {
                        records::withdraw(&dir, &record_id, &reason, json).await
                    }
                    Command::Key(KeyCommand::Rotate) => records::key_rotate(&dir, json).await,
                    Command::Key(KeyCommand::Consent { .. }) => unreachable!("handled above"),
                    Command::List { kind, author, all } => {
                        records::list(&dir, kind.as_deref(), author.as_deref(), all, json).await
                    }
                    Command::History { record_id, author } => {
                        records::history(&dir, &record_id, author.as_deref(), json).await
                    }
                    Command::Status => status::status(&dir, json).await,
                    Command::Backup { to, with_key } => {
                        backup::backup(&dir, &to, with_key, json).await
                    }
                    Command::Peer(PeerCommand::Add {
                        name,
                        url,
                        key,
                        siren,
                    }) => peers::peer_add(&dir, &name, &url, &key, siren.as_deref(), json).await,
                    Command::Peer(PeerCommand::List) => peers::peer_list(&dir, json).await,
                    Command::Peer(PeerCommand::Remove { name }) => {
                        peers::peer_remove(&dir, &name, json).await
                    }
                    Command::Sync { name } => peers::sync(&dir, name.as_deref(), json).await,
                    Command::Trust(TrustCommand::AddRoot { key, note }) => {
                        peers::trust_add(&dir, &key, &note, json).await
                    }
                    Command::Trust(TrustCommand::List) => peers::trust_list(&dir, json).await,
                    Command::Token(TokenCommand::Create {
                        siren,
                        name,
                        expires,
                    }) => tokens::create(&dir, &siren, &name, &expires, json).await,
                    Command::Token(TokenCommand::List) => tokens::list(&dir, json).await,
                    Command::Proposals(ProposalsCommand::List { all }) => {
                        tokens::proposals_list(&dir, all, json).await
                    }
                    Command::Proposals(ProposalsCommand::Accept { id }) => {
                        tokens::proposals_decide(&dir, &id, true, "", json).await
                    }
                    Command::Proposals(ProposalsCommand::Refuse { id, reason }) => {
                        tokens::proposals_decide(&dir, &id, false, &reason, json).await
                    }
                    Command::Aggregate(AggregateCommand::Publish {
                        territory,
                        period,
                        combine,
                    }) => {
                        aggregate::publish(&dir, &territory, period.as_deref(), &combine, json)
                            .await
                    }
                    Command::Aggregate(AggregateCommand::Verify { id }) => {
                        aggregate::verify(&dir, &id, json).await
                    }
                    Command::Members { territory } => {
                        members::members(&dir, territory.as_deref(), json).await
                    }
                    Command::AccessLog {
                        since,
                        siren,
                        limit,
                    } => tokens::access_log(&dir, &since, siren.as_deref(), limit, json).await,
                    Command::Token(TokenCommand::Revoke { id }) => {
                        tokens::revoke(&dir, &id, json).await
                    }
                    Command::Trust(TrustCommand::Remove { key }) => {
                        peers::trust_remove(&dir, &key, json).await
                    }
                    Command::Quarantine(QuarantineCommand::List { limit }) => {
                        peers::quarantine_list(&dir, limit, json).await
                    }
                    Command::Quarantine(QuarantineCommand::Drop { what }) => {
                        peers::quarantine_drop(&dir, &what, json).await
                    }
                    Command::Quarantine(QuarantineCommand::Release) => {
                        peers::quarantine_release(&dir, json).await
                    }
                    Command::Quarantine(QuarantineCommand::Purge { older_than }) => {
                        peers::quarantine_purge(&dir, older_than.as_deref(), json).await
                    }
                    Command::Import {
                        format,
                        files,
                        source,
                        withdraw_missing,
                        delimiter,
                        timeout,
                    } => {
                        let mut reading = interop::Reading {
                            options: interop::import_options(delimiter.as_deref())?,
                            fetcher: maillage_harvest::Fetcher::new(),
                        };
                        reading.fetcher.timeout = std::time::Duration::from_secs(timeout.max(1));
                        interop::import(
                            &dir,
                            &format,
                            &files,
                            source.as_deref(),
                            withdraw_missing,
                            &reading,
                            json,
                        )
                        .await
                    }
                    Command::Export {
                        format,
                        output,
                        base_url,
                    } => {
                        let format = interop::ExportFormat::parse(&value_name(format))?;
                        interop::export(&dir, format, output.as_deref(), base_url.as_deref()).await
                    }
                    Command::Search {
                        words,
                        filters,
                        page,
                    } => search::search(&dir, &words.join(" "), &filters, page, json).await,
                    Command::Stats { filters, by } => {
                        search::stats(&dir, &filters, &value_name(by), json).await
                    }
                    Command::Reindex { wait } => search::reindex(&dir, wait, json).await,
                    Command::Check { health: true } => monitor::health(&dir, json).await,
                    Command::Check { health: false } => monitor::verify(&dir, json).await,
                    Command::Harvest(HarvestCommand::Run { name }) => {
                        status::harvest_now(&dir, &name, json).await
                    }
                    Command::Collection(CollectionCommand::Create {
                        record_id,
                        title,
                        description,
                        visibility,
                    }) => {
                        collection::create(
                            &dir,
                            &record_id,
                            &title,
                            description.as_deref(),
                            &value_name(visibility),
                            json,
                        )
                        .await
                    }
                    Command::Collection(CollectionCommand::Add { record_id, items }) => {
                        collection::add(&dir, &record_id, &items, json).await
                    }
                    Command::Collection(CollectionCommand::Remove { record_id, items }) => {
                        collection::remove(&dir, &record_id, &items, json).await
                    }
                    Command::Collection(CollectionCommand::Show { record_id, author }) => {
                        collection::show(&dir, &record_id, author.as_deref(), json).await
                    }
                    Command::Init { .. }
                    | Command::Verify { .. }
                    | Command::Sign { .. }
                    | Command::Restore { .. }
                    | Command::GenerateDocs { .. } => {
                        unreachable!("handled above")
                    }
                }
            })
        }
    }
}

/// Man pages (`maillage.1` and one per subcommand, `maillage-peer-add.1`)
/// and completions for bash, zsh and fish, from the CLI's definition: what
/// `--help` says, the shell completes.
fn generate_docs(dir: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    use clap::CommandFactory;
    let man = dir.join("man");
    let completions = dir.join("completions");
    for d in [&man, &completions] {
        std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    let command = Cli::command();
    clap_mangen::generate_to(command.clone(), &man)
        .with_context(|| format!("cannot write man pages into {}", man.display()))?;
    for shell in [
        clap_complete::Shell::Bash,
        clap_complete::Shell::Zsh,
        clap_complete::Shell::Fish,
    ] {
        clap_complete::generate_to(shell, &mut command.clone(), "maillage", &completions)
            .with_context(|| format!("cannot write completions into {}", completions.display()))?;
    }
    Ok(())
}
