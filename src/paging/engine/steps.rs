//! The escalation side of the pager: each due step decided and committed, each queued
//! message handed to its channel, side by side within bounds.

use super::*;

impl Pager {
    /// Runs every step due now: how many were committed.
    pub async fn cycle(&self) -> Result<usize, PagingError> {
        let now = self.now();
        let due = self.pages.due(now, now + LEASE, BATCH).await?;
        if due.is_empty() {
            return Ok(0);
        }
        let on_call = self.on_call().await?;
        // The steps are committed side by side: the ledger writes those waiting together in
        // one transaction (SQLite's group commit), so a thousand due pages cost a few
        // fsyncs, not a thousand.
        let mut steps = tokio::task::JoinSet::new();
        let at_once = Arc::new(tokio::sync::Semaphore::new(AT_ONCE));
        for page in due {
            let step = self.plan(&page, &on_call, now);
            let unanswered = step.next.is_none();
            let escalated = page.position.stage > 0 && !step.messages.is_empty();
            let (pages, at_once) = (self.pages.clone(), at_once.clone());
            steps.spawn(async move {
                let _turn = at_once.acquire_owned().await;
                let id = step.page;
                (id, unanswered, escalated, pages.advance(step, now).await)
            });
        }
        let mut done = 0;
        while let Some(joined) = steps.join_next().await {
            let Ok((id, unanswered, escalated, advanced)) = joined else {
                continue;
            };
            match advanced {
                Ok(true) => {
                    done += 1;
                    if unanswered {
                        self.metrics.record(Event::PageUnanswered);
                        self.notices.wake();
                    }
                    if escalated {
                        self.metrics.record(Event::PageEscalated);
                    }
                }
                Ok(false) => {}
                // One page that cannot be stepped (its store refuses the write) must not
                // hold back the others: it is in the log, and taken again after its lease.
                Err(e) => {
                    tracing::error!(page = %id, error = %crate::errors::Chain(&e), "a page's step could not be committed; tried again after its lease");
                }
            }
        }
        Ok(done)
    }

    /// One page's due step, decided.
    fn plan(&self, page: &DuePage, on_call: &OnCall, now: DateTime<Utc>) -> Advance {
        let mut advance = Advance {
            page: page.id,
            from: page.position,
            messages: Vec::new(),
            callouts: Vec::new(),
            timeline: Vec::new(),
            next: None,
            notices: Vec::new(),
        };
        let Some(policy) = escalation::policy_named(on_call, &page.policy) else {
            advance.timeline.push(text::no_policy(&page.policy));
            advance.notices = self.unanswered(page);
            return advance;
        };
        match escalation::step(&policy, page.position) {
            Step::Notify {
                targets,
                next,
                wait,
            } => {
                let (reached, problems) = escalation::recipients(on_call, &targets, now);
                advance
                    .timeline
                    .push(text::stage_line(page.position, &reached));
                advance.timeline.extend(problems);
                for r in &reached {
                    self.reach(page, r, now, &mut advance);
                }
                advance.next = Some((next, now + wait));
            }
            Step::NextRound { next, wait } => {
                advance.timeline.push(format!(
                    "nobody acknowledged: round {} begins",
                    next.round + 1
                ));
                advance.next = Some((next, now + wait));
            }
            Step::Exhausted => {
                advance
                    .timeline
                    .push("nobody acknowledged after every stage: unanswered".into());
                advance.notices = self.unanswered(page);
            }
        }
        advance
    }

    /// The messages and the callout of one person reached by a stage.
    fn reach(&self, page: &DuePage, r: &Recipient, now: DateTime<Utc>, advance: &mut Advance) {
        let person = r.person.id.as_str();
        let link = self.links.as_ref().map(|l| l.link(page.id, person, now));
        for (channel, to) in escalation::contacts(&r.person) {
            advance.messages.push(NewMessage {
                key: escalation::message_key(page.id, page.position, person, channel),
                person: person.to_owned(),
                channel,
                to,
                text: text::page_message(page, channel, link.as_deref()),
                stage: Some(page.position.stage),
                round: Some(page.position.round),
            });
        }
        let tz = r.person.time_zone;
        advance.callouts.push(Callout {
            page: page.id,
            person: person.to_owned(),
            schedule: r.schedule.clone(),
            at: now,
            local_time: format!(
                "{} {}",
                now.with_timezone(&tz).format("%Y-%m-%dT%H:%M"),
                tz.name()
            ),
            off_hours: r.person.off_hours(now),
        });
    }

    fn unanswered(&self, page: &DuePage) -> Vec<Notice> {
        match self.notices.is_on() {
            true => vec![Notice::Unanswered {
                page: page.id.0,
                alarm: page.alarm.clone(),
                summary: page.summary.clone(),
            }],
            false => Vec::new(),
        }
    }

    /// Hands every queued message to its channel: how many went.
    pub async fn send_due(&self) -> Result<usize, PagingError> {
        let now = self.now();
        let taken = self.pages.take_messages(now, now + LEASE, BATCH).await?;
        // Sent side by side: one slow provider call holds back no other message.
        let mut sends = tokio::task::JoinSet::new();
        let at_once = Arc::new(tokio::sync::Semaphore::new(AT_ONCE));
        for m in taken {
            let (transport, pages) = (self.transport.clone(), self.pages.clone());
            let (metrics, clock) = (self.metrics.clone(), self.clock.clone());
            let at_once = at_once.clone();
            sends.spawn(async move {
                let _turn = at_once.acquire_owned().await;
                send_one(m, transport, pages, metrics, clock).await
            });
        }
        let mut sent = 0;
        while let Some(joined) = sends.join_next().await {
            match joined {
                Ok(Ok(true)) => sent += 1,
                Ok(Ok(false)) | Err(_) => {}
                Ok(Err(e)) => return Err(e.into()),
            }
        }
        Ok(sent)
    }
}

/// Hands one message to its channel and records what became of it: `true` when it went.
async fn send_one(
    m: crate::ports::pages::OutMessage,
    transport: Arc<dyn Transport>,
    pages: Arc<dyn PageLedger>,
    metrics: Arc<dyn MetricsSink>,
    clock: Clock,
) -> Result<bool, LedgerError> {
    let result = transport.send(&m).await;
    let now = clock();
    let retry = match &result {
        Err(_) if m.attempts + 1 < ATTEMPTS => {
            let pause = RETRY * 2u32.pow(m.attempts);
            Some(now + chrono::Duration::from_std(pause).unwrap_or(LEASE))
        }
        _ => None,
    };
    let outcome = result.map_err(|e| e.to_string());
    let went = outcome.is_ok();
    match &outcome {
        Ok(()) => metrics.record(Event::PageMessageSent),
        Err(e) => {
            tracing::warn!(page = %m.page, channel = m.channel.as_str(), error = %e, "a page's message failed");
            metrics.record(Event::PageMessageFailed);
        }
    }
    pages.message_done(m.id, outcome, retry, now).await?;
    Ok(went)
}
