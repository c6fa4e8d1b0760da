//! Turns at the one writer connection: intake goes first, and nothing starves.
//!
//! Every write shares one connection. The connection pool serves waiters first come, first
//! served, so under load a group commit of acknowledged-to-be webhooks queued behind every
//! bookkeeping write already waiting (runs, steps, the outbox), and acks took that long.
//! Here intake's group commits and bookkeeping wait in two queues and take turns
//! alternately: a group commit waits for at most one bookkeeping transaction before its
//! own, and bookkeeping still gets every other turn in a flood, so incidents keep moving.
//! The rare writes that take no turn (PagerDuty, approvals, chat settings) just queue at the
//! connection pool; a turn holder waits there for them.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// Who is asking for the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Queue {
    /// A group commit of the intake journal: webhooks wait for it.
    Intake,
    /// Everything else.
    Bookkeeping,
}

/// The two queues; see the module doc.
#[derive(Debug, Default)]
pub(super) struct Turns {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Whether a turn is held now.
    held: bool,
    /// The queue of the latest turn given, to alternate.
    last: Option<Queue>,
    intake: VecDeque<oneshot::Sender<()>>,
    bookkeeping: VecDeque<oneshot::Sender<()>>,
}

/// A turn at the writer; the next waiter gets it when this is dropped.
#[derive(Debug)]
pub(super) struct Turn {
    turns: Arc<Turns>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.turns.pass();
    }
}

/// A waiter's place in a queue; a waiter dropped (cancelled) after its turn came passes it on.
struct Waiting {
    answer: oneshot::Receiver<()>,
    turns: Arc<Turns>,
    served: bool,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if !self.served {
            self.answer.close();
            if self.answer.try_recv().is_ok() {
                self.turns.pass();
            }
        }
    }
}

impl Turns {
    /// Waits for a turn in `queue`.
    pub(super) async fn take(self: &Arc<Self>, queue: Queue) -> Turn {
        loop {
            let answer = {
                let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                if !state.held {
                    state.held = true;
                    state.last = Some(queue);
                    return Turn {
                        turns: self.clone(),
                    };
                }
                let (tx, rx) = oneshot::channel();
                match queue {
                    Queue::Intake => state.intake.push_back(tx),
                    Queue::Bookkeeping => state.bookkeeping.push_back(tx),
                }
                rx
            };
            let mut waiting = Waiting {
                answer,
                turns: self.clone(),
                served: false,
            };
            if (&mut waiting.answer).await.is_ok() {
                waiting.served = true;
                return Turn {
                    turns: self.clone(),
                };
            }
            // Never happens (a sender is dropped unsent only once its receiver is gone); if
            // it did, queueing again is still correct.
            waiting.served = true;
        }
    }

    /// Gives the turn to the next waiter, alternating between the queues, or frees it.
    fn pass(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let order = if state.last == Some(Queue::Intake) {
            [Queue::Bookkeeping, Queue::Intake]
        } else {
            [Queue::Intake, Queue::Bookkeeping]
        };
        for queue in order {
            loop {
                let next = match queue {
                    Queue::Intake => state.intake.pop_front(),
                    Queue::Bookkeeping => state.bookkeeping.pop_front(),
                };
                let Some(waiter) = next else { break };
                // A waiter that gave up is skipped.
                if waiter.send(()).is_ok() {
                    state.last = Some(queue);
                    return;
                }
            }
        }
        state.held = false;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Queues a waiter that records its name once it holds a turn, then gives it back.
    fn waiter(
        turns: &Arc<Turns>,
        queue: Queue,
        name: &'static str,
        log: &Arc<Mutex<Vec<&'static str>>>,
    ) -> tokio::task::JoinHandle<()> {
        let (turns, log) = (turns.clone(), log.clone());
        tokio::spawn(async move {
            let _turn = turns.take(queue).await;
            log.lock().unwrap_or_else(|e| e.into_inner()).push(name);
        })
    }

    async fn settle() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    #[tokio::test]
    async fn intake_jumps_the_bookkeeping_queue_but_turns_alternate() {
        let turns = Arc::new(Turns::default());
        let log = Arc::new(Mutex::new(Vec::new()));
        let held = turns.take(Queue::Bookkeeping).await;
        let mut tasks = Vec::new();
        for name in ["b1", "b2", "b3"] {
            tasks.push(waiter(&turns, Queue::Bookkeeping, name, &log));
            settle().await;
        }
        for name in ["i1", "i2"] {
            tasks.push(waiter(&turns, Queue::Intake, name, &log));
            settle().await;
        }
        drop(held);
        for task in tasks {
            task.await.expect("no waiter panics");
        }
        let order = log.lock().unwrap_or_else(|e| e.into_inner()).clone();
        assert_eq!(order, ["i1", "b1", "i2", "b2", "b3"]);
        // Free again: a new taker gets it at once.
        let _again = turns.take(Queue::Intake).await;
    }

    #[tokio::test]
    async fn a_cancelled_waiter_never_keeps_the_turn() {
        let turns = Arc::new(Turns::default());
        let held = turns.take(Queue::Intake).await;
        // Gives up before its turn comes.
        let early = tokio::time::timeout(Duration::from_millis(10), turns.take(Queue::Intake));
        assert!(early.await.is_err());
        // Its turn is handed over while nobody polls it, then it is dropped.
        let late = Box::pin(turns.take(Queue::Bookkeeping));
        let mut late = late;
        assert!(futures::poll!(&mut late).is_pending());
        drop(held);
        drop(late);
        let got = tokio::time::timeout(Duration::from_secs(1), turns.take(Queue::Bookkeeping));
        assert!(got.await.is_ok(), "the turn came back");
    }
}
