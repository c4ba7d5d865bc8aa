//! Scenario 3: fan-out.
//!
//! `--fanout-sockets` sockets (1,000) join one conversation, half on connector A and half on
//! connector B. Each round pushes one event and waits until every socket has it; the round's
//! result is the time from the push to its arrival on the last socket (and on the first). Rounds
//! run one after another (`--fanout-pushes`, 20).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::bail;

use crate::http_client::HttpConnection;
use crate::latency::{median, Ms};
use crate::options::Options;
use crate::payload::{self, clock_ns, Stamp, PUSH_PATH};
use crate::report::Report;
use crate::scenarios::{thousands, wait_until};
use crate::socket_pool::{PoolSpec, SocketPool};
use crate::stack::Stack;

const SCENARIO: &str = "3 fan-out";

/// Longest wait for one round to reach every socket.
const ROUND_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Default, Clone, Copy)]
struct Round {
    arrivals: usize,
    first_ns: u64,
    last_ns: u64,
}

#[derive(Default)]
struct Rounds {
    rounds: Vec<Round>,
    unexpected: usize,
}

pub async fn run(options: &Options, stack: &mut Stack, report: &mut Report) -> anyhow::Result<()> {
    let sockets = options.fanout_sockets;
    let pushes = options.fanout_pushes;
    let conversation = payload::conversation(&stack.run_id, "fanout", 0);
    let rounds = Arc::new(Mutex::new(Rounds {
        rounds: vec![Round::default(); pushes],
        unexpected: 0,
    }));
    let handler = {
        let rounds = rounds.clone();
        Arc::new(move |_: usize, arguments: &str, at: u64| {
            let mut rounds = rounds.lock().expect("rounds lock");
            let seq = payload::parse_delivery(arguments).map(|d| d.stamp.seq as usize);
            match seq.ok().and_then(|seq| rounds.rounds.get_mut(seq)) {
                Some(round) => {
                    round.arrivals += 1;
                    if round.first_ns == 0 || at < round.first_ns {
                        round.first_ns = at;
                    }
                    round.last_ns = round.last_ns.max(at);
                }
                None => rounds.unexpected += 1,
            }
        })
    };
    let token = stack.launcher.token();
    let on_a = sockets / 2;
    let mut pools = Vec::new();
    for (index, (connector, count)) in [(0, on_a), (1, sockets - on_a)].into_iter().enumerate() {
        pools.push(
            SocketPool::open(
                PoolSpec {
                    server: stack.connectors[connector].addr(),
                    token: &token,
                    conversations: vec![conversation.join_name.clone(); count],
                    concurrency: 128,
                    source_offset: index * on_a,
                },
                handler.clone(),
            )
            .await?,
        );
    }
    let mut connection = HttpConnection::open(stack.interceptor.addr()).await?;

    let mut last = Vec::with_capacity(pushes);
    let mut first = Vec::with_capacity(pushes);
    for seq in 0..pushes {
        let sent_ns = clock_ns();
        let stamp = Stamp {
            conv: 0,
            seq: seq as u32,
            sent_ns,
        };
        let event = payload::dialogflow_event(&conversation, stamp);
        let body = payload::push_body(&event, &format!("{}-fanout-{seq}", stack.run_id));
        let status = connection.post_json(PUSH_PATH, body).await?;
        if !(200..300).contains(&status) {
            bail!("push {seq} answered {status}");
        }
        let reached_all = wait_until(ROUND_TIMEOUT, || {
            rounds.lock().expect("rounds lock").rounds[seq].arrivals >= sockets
        })
        .await;
        let round = rounds.lock().expect("rounds lock").rounds[seq];
        if !reached_all {
            bail!(
                "push {seq} reached {} of {sockets} sockets within {ROUND_TIMEOUT:?}",
                round.arrivals
            );
        }
        last.push(Duration::from_nanos(round.last_ns.saturating_sub(sent_ns)));
        first.push(Duration::from_nanos(round.first_ns.saturating_sub(sent_ns)));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ended: usize = pools.iter().map(SocketPool::ended_by_server).sum();
    for pool in pools {
        pool.close().await;
    }

    let (arrivals, unexpected) = {
        let rounds = rounds.lock().expect("rounds lock");
        let arrivals: usize = rounds.rounds.iter().map(|r| r.arrivals).sum();
        (arrivals, rounds.unexpected)
    };
    let max = |values: &[Duration]| values.iter().max().copied().unwrap_or_default();
    report.info(
        SCENARIO,
        &format!(
            "push to the last of {} sockets (2 connectors), {pushes} rounds",
            thousands(sockets as u64)
        ),
        format!("median {} / max {}", Ms(median(&last)), Ms(max(&last))),
    );
    report.info(
        SCENARIO,
        "push to the first socket",
        format!("median {} / max {}", Ms(median(&first)), Ms(max(&first))),
    );
    report.check(
        SCENARIO,
        "deliveries (exactly one per socket and push)",
        format!(
            "{} of {} (unexpected {unexpected}, sockets closed by server {ended})",
            thousands(arrivals as u64),
            thousands((sockets * pushes) as u64)
        ),
        arrivals == sockets * pushes && unexpected == 0 && ended == 0,
    );
    Ok(())
}
