//! `wicket run --watch`: the config file and every file it reads are polled, and a change
//! reloads. Polling (a `stat` of a few files twice a second) sees every way an editor or a
//! deploy tool replaces a file (in place, by rename, through a symlink swap) with no
//! platform-specific notification API.

use super::Deployer;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How often the files are looked at.
const POLL: Duration = Duration::from_millis(250);
/// A change is acted on once the files have stayed the same this long: a file being written
/// is not read half-way.
const SETTLE: Duration = Duration::from_millis(100);

/// What a file looks like from outside; `None` when it is missing.
type Signature = Vec<(PathBuf, Option<(SystemTime, u64)>)>;

fn signature(paths: &[PathBuf]) -> Signature {
    paths
        .iter()
        .map(|p| {
            let seen = std::fs::metadata(p)
                .ok()
                .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()));
            (p.clone(), seen)
        })
        .collect()
}

/// Watch until the process ends; each change is reloaded (and reported) by `deployer`. The
/// files are looked at once now, before the returned future first runs, so a change made
/// right after start-up is not taken for the starting state.
pub fn watch(deployer: Arc<Deployer>) -> impl std::future::Future<Output = ()> {
    let paths = deployer.watched();
    let seen = signature(&paths);
    tracing::info!(
        files = paths.len(),
        "watching the config and the files it reads"
    );
    poll(deployer, paths, seen)
}

async fn poll(deployer: Arc<Deployer>, mut paths: Vec<PathBuf>, mut seen: Signature) {
    loop {
        tokio::time::sleep(POLL).await;
        let now = signature(&paths);
        if now == seen {
            continue;
        }
        let mut settled = now;
        loop {
            tokio::time::sleep(SETTLE).await;
            let again = signature(&paths);
            if again == settled {
                break;
            }
            settled = again;
        }
        tracing::info!(
            trigger = "watch",
            "a watched file changed; reloading the config"
        );
        let _ = deployer.reload().await;
        // A refused config leaves the old one's files watched: the next edit tries again. A
        // file changed while the reload ran is still seen as a change.
        let next = deployer.watched();
        seen = if next == paths {
            settled
        } else {
            signature(&next)
        };
        paths = next;
    }
}
