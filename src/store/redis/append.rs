//! Appending to the shared log: each commit takes the next sequence with a compare-and-append
//! script that moves the counter and its MACed head with the entry, so two replicas never take
//! the same place, and a counter moved by anyone else (its MAC fails) is overruled instead of
//! believed. With `wait_replicas: N`, `WAIT N` confirms each append before it is acknowledged.

use super::log;
use super::{RedisStore, HEAD, SEQ, STREAM};
use crate::store::op::Op;
use redis::aio::ConnectionManager;
use redis::AsyncCommands as _;
use std::sync::atomic::Ordering;

/// Appends entry `ARGV[1]` (content `ARGV[2]`, MAC `ARGV[3]`) and moves the counter and head
/// (`ARGV[4]`) to it, when it is past both the counter and the last entry of the stream. A
/// counter the writer found forged (`ARGV[5]`, its exact value) or a last entry it found
/// forged (`ARGV[6]`, its id) does not hold it back. Otherwise answers the counter, its head
/// and the last entry (id, seq, ops, mac) for the writer to check and try again.
const APPEND: &str = r"
local raw = redis.call('GET', KEYS[2])
local cur = tonumber(raw or '0') or 0
local want = tonumber(ARGV[1])
local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
local tid, tseq, tops, tmac = '', '', '', ''
if top then
  tid = top[1]
  local f = top[2]
  for i = 1, #f, 2 do
    if f[i] == 'seq' then tseq = f[i + 1] elseif f[i] == 'ops' then tops = f[i + 1]
    elseif f[i] == 'mac' then tmac = f[i + 1] end
  end
end
local counter_ok = want > cur or (ARGV[5] ~= '' and ARGV[5] == raw)
local top_ok = want > (tonumber(tseq) or 0) or (ARGV[6] ~= '' and ARGV[6] == tid)
if not (counter_ok and top_ok) then
  return {0, raw or '0', redis.call('GET', KEYS[3]) or '', tid, tseq, tops, tmac}
end
redis.call('SET', KEYS[2], ARGV[1])
redis.call('SET', KEYS[3], ARGV[4])
local id = redis.call('XADD', KEYS[1], '*', 'seq', ARGV[1], 'ops', ARGV[2], 'mac', ARGV[3])
return {1, id, '', '', '', '', ''}
";

/// Sets the counter and head to `ARGV[2]`/`ARGV[3]` if the counter still holds `ARGV[1]`.
const SET_HEAD: &str = r"
if (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[3])
return 1
";

/// The script's answer: appended (1) or not, then the counter, its head MAC and the last
/// entry's id, seq, ops and mac.
type Answer = (i64, String, String, String, String, String, String);

/// How many own sequences are remembered.
const OWN: usize = 4096;

impl RedisStore {
    /// Appends one commit to the stream at the next sequence; returns once Redis has it (and,
    /// with `wait_replicas`, once that many Redis replicas confirm it).
    pub async fn commit(&self, ops: &[Op]) -> Result<(), String> {
        if ops.is_empty() {
            return Ok(());
        }
        let json = serde_json::to_string(ops).map_err(|e| e.to_string())?;
        let mut c = self.appender().await;
        for op in ops {
            // The newest value stays readable at start (a hint: the stream and snapshot carry
            // it MACed, and the ring only moves forward).
            if let Op::Meta { key, value } = op {
                let r: Result<(), _> = c.set(format!("tollgate:meta:{key}"), value).await;
                self.mark(r)?;
            }
        }
        let script = redis::Script::new(APPEND);
        // Past everything this replica read (waiting for a read under way) and appended.
        let held = self.position.lock().await.seq;
        let mut want = self.appended.load(Ordering::Acquire).max(held) + 1;
        let (mut forged_counter, mut forged_top) = (String::new(), String::new());
        let mut retried_io = false;
        for _ in 0..64 {
            let mac = log::entry_tag(&self.master, want, &json);
            let r: Result<Answer, _> = script
                .key(STREAM)
                .key(SEQ)
                .key(HEAD)
                .arg(want)
                .arg(&json)
                .arg(&mac)
                .arg(log::head_tag(&self.master, want))
                .arg(&forged_counter)
                .arg(&forged_top)
                .invoke_async(&mut c)
                .await;
            match r {
                Ok((1, ..)) => {
                    self.appended.fetch_max(want, Ordering::AcqRel);
                    self.remember_own(want);
                    self.mark(Ok(()))?;
                    return self.confirm(&mut c).await;
                }
                Ok((_, raw, head_mac, top_id, top_seq, top_ops, top_mac)) => {
                    // Another replica took that place: the next one past both the head and
                    // the last entry, each believed only when its MAC checks.
                    match log::verified_head(&self.master, Some(&raw), Some(&head_mac)) {
                        Some(cur) => want = want.max(cur.saturating_add(1)),
                        None => {
                            self.note_forged("counter", &raw);
                            forged_counter = raw;
                        }
                    }
                    let top = top_seq.parse::<u64>().ok().filter(|s| {
                        crate::secret::ct_eq(
                            log::entry_tag(&self.master, *s, &top_ops).as_bytes(),
                            top_mac.as_bytes(),
                        )
                    });
                    match top {
                        Some(seq) => want = want.max(seq.saturating_add(1)),
                        None if !top_id.is_empty() => {
                            self.note_forged("last entry", &top_id);
                            forged_top = top_id;
                        }
                        None => {}
                    }
                }
                // One retry after the manager reconnects (a broken pipe after a restart).
                Err(e) if !retried_io => {
                    retried_io = true;
                    let _ = self.mark::<()>(Err(e));
                    c = self.appender().await;
                }
                Err(e) => return self.mark(Err(e)),
            }
        }
        Err("could not take a place in the shared log (64 tries)".into())
    }

    /// The connection an append goes on: one of the appenders with `wait_replicas` (a `WAIT`
    /// holds up its connection), else the writer.
    async fn appender(&self) -> ConnectionManager {
        let conns = self.conns().await;
        if conns.appenders.is_empty() {
            return conns.writer.clone();
        }
        let i = self.next_appender.fetch_add(1, Ordering::Relaxed) % conns.appenders.len();
        conns.appenders[i].clone()
    }

    /// With `wait_replicas: N`, `WAIT N` after a write: an error when fewer confirm in time.
    pub(super) async fn confirm(&self, c: &mut ConnectionManager) -> Result<(), String> {
        if self.wait_replicas == 0 {
            return Ok(());
        }
        let r: Result<u32, _> = redis::cmd("WAIT")
            .arg(self.wait_replicas)
            .arg(super::WAIT_MS)
            .query_async(c)
            .await;
        let got = self.mark(r)?;
        if got < self.wait_replicas {
            return Err(format!(
                "only {got} of {} Redis replicas confirmed the write within {} ms",
                self.wait_replicas,
                super::WAIT_MS
            ));
        }
        Ok(())
    }

    fn remember_own(&self, seq: u64) {
        let mut own = self.own.lock().expect("own lock");
        if own.len() == OWN {
            own.pop_front();
        }
        own.push_back(seq);
    }

    /// True when every sequence of `from..=to` was appended by this replica (applied here
    /// when it was made, so its absence from the log is no hole here).
    pub(super) fn all_own(&self, from: u64, to: u64) -> bool {
        if to < from || to - from >= OWN as u64 {
            return false;
        }
        let own = self.own.lock().expect("own lock");
        (from..=to).all(|s| own.contains(&s))
    }

    /// Logs once per kind that the log's counter or last entry was forged (overruled).
    fn note_forged(&self, what: &'static str, value: &str) {
        let mut logged = self.logged.lock().expect("logged lock");
        if !logged.contains(&what) {
            logged.push(what);
            let shown: String = value.chars().take(24).collect();
            tracing::warn!(what, value = %shown, "shared store: written outside tollgate (its MAC fails); overruled");
        }
    }

    /// The log's head as stored: the counter's raw value and the sequence its MAC proves.
    pub(super) async fn head(&self) -> Result<(Option<String>, Option<u64>), String> {
        let mut c = self.conns().await.reader.clone();
        let r: Result<(Option<String>, Option<String>), _> = redis::cmd("MGET")
            .arg(SEQ)
            .arg(HEAD)
            .query_async(&mut c)
            .await;
        let (raw, mac) = self.mark(r)?;
        let seq = log::verified_head(&self.master, raw.as_deref(), mac.as_deref());
        Ok((raw, seq))
    }

    /// Puts the head back to `seq` (MACed) if the counter still holds `seen`.
    pub(super) async fn set_head(&self, seen: Option<&str>, seq: u64) -> Result<(), String> {
        let mut c = self.conns().await.writer.clone();
        let r: Result<i64, _> = redis::Script::new(SET_HEAD)
            .key(SEQ)
            .key(HEAD)
            .arg(seen.unwrap_or(""))
            .arg(seq)
            .arg(log::head_tag(&self.master, seq))
            .invoke_async(&mut c)
            .await;
        self.mark(r).map(|_| ())
    }
}
