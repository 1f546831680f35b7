package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/id"
	"github.com/samplit/samplit/internal/store"
)

var _ store.Webhooks = (*Store)(nil)

// writeEvents writes events to the outbox in tx and fans each out into one
// pending delivery, due at the event's time, per enabled endpoint of the
// workspace subscribed to its type. Callers run it in the transaction of the
// change that caused the events, which is what makes the outbox atomic with
// the change.
func writeEvents(ctx context.Context, tx *sql.Tx, workspaceID string, events []store.OutboxEvent) error {
	if len(events) == 0 {
		return nil
	}
	rb := newRowsBuilder()
	types := map[string]bool{}
	for i := range events {
		ev := &events[i]
		if ev.WorkspaceID == "" {
			ev.WorkspaceID = workspaceID
		}
		if ev.WorkspaceID != workspaceID || ev.ID == "" {
			return fmt.Errorf("outbox event %q of workspace %q written with a change of workspace %q", ev.ID, ev.WorkspaceID, workspaceID)
		}
		data := string(ev.Data)
		if len(ev.Data) == 0 {
			data = "{}"
		}
		rb.add("(?, ?, ?, ?, ?)", ev.ID, ev.WorkspaceID, string(ev.Type), data, micros(ev.CreatedAt))
		types[string(ev.Type)] = true
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO outbox (id, workspace_id, type, data, created_at) VALUES `+rb.String(), rb.args...); err != nil {
		return fmt.Errorf("write outbox events: %w", err)
	}
	args := []any{workspaceID}
	for _, t := range sortedKeys(types) {
		args = append(args, t)
	}
	rows, err := tx.QueryContext(ctx,
		`SELECT we.webhook_id, we.event_type FROM webhook_events we JOIN webhooks w ON w.id = we.webhook_id
		 WHERE we.workspace_id = $1 AND w.enabled AND we.event_type IN (`+placeholders(2, len(args)-1)+`)
		 ORDER BY we.webhook_id`, args...)
	if err != nil {
		return fmt.Errorf("find subscribed webhooks: %w", err)
	}
	subscribers := map[store.EventType][]string{}
	for rows.Next() {
		var hook, typ string
		if err := rows.Scan(&hook, &typ); err != nil {
			rows.Close()
			return fmt.Errorf("find subscribed webhooks: %w", err)
		}
		subscribers[store.EventType(typ)] = append(subscribers[store.EventType(typ)], hook)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("find subscribed webhooks: %w", err)
	}
	var ds []pendingDelivery
	for _, ev := range events {
		for _, hook := range subscribers[ev.Type] {
			ds = append(ds, pendingDelivery{id.New(id.Delivery), hook, ev})
		}
	}
	return insertDeliveries(ctx, tx, ds)
}

type pendingDelivery struct {
	id      string
	webhook string
	event   store.OutboxEvent
}

func insertDeliveries(ctx context.Context, tx *sql.Tx, ds []pendingDelivery) error {
	return chunks(ds, 200, func(ds []pendingDelivery) error {
		rb := newRowsBuilder()
		for _, d := range ds {
			at := micros(d.event.CreatedAt)
			rb.add("(?, ?, ?, ?, 'pending', 0, ?, ?, ?)", d.id, d.webhook, d.event.WorkspaceID, d.event.ID, at, at, at)
		}
		_, err := tx.ExecContext(ctx,
			`INSERT INTO deliveries (id, webhook_id, workspace_id, event_id, status, attempts, next_attempt_at, created_at, updated_at)
			 VALUES `+rb.String()+` ON CONFLICT (webhook_id, event_id) DO NOTHING`, rb.args...)
		if err != nil {
			return fmt.Errorf("write deliveries: %w", err)
		}
		return nil
	})
}

// EmitEvents writes events (of one or more workspaces) to the outbox.
func (s *Store) EmitEvents(ctx context.Context, events ...store.OutboxEvent) error {
	byWS := map[string][]store.OutboxEvent{}
	for _, ev := range events {
		byWS[ev.WorkspaceID] = append(byWS[ev.WorkspaceID], ev)
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		for _, ws := range sortedKeys(byWS) {
			if err := writeEvents(ctx, tx, ws, slices.Clone(byWS[ws])); err != nil {
				return err
			}
		}
		return nil
	})
}

const webhookColumns = `w.id, w.workspace_id, w.url, w.description, w.enabled, w.disabled_reason, w.key_id, w.secret,
	w.prev_key_id, w.prev_secret, w.prev_until, w.failing_since, w.created_at, w.updated_at`

func scanWebhook(r scanner) (store.Webhook, error) {
	var w webhookRow
	if err := r.Scan(webhookDest(&w)...); err != nil {
		return store.Webhook{}, err
	}
	w.finish()
	return w.Webhook, nil
}

func errWebhookNotFound(ref string) error {
	return apperr.New(apperr.NotFound, "webhook %q not found", ref)
}

// CreateWebhook stores w and its subscriptions.
func (s *Store) CreateWebhook(ctx context.Context, w store.Webhook) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO webhooks (id, workspace_id, url, description, enabled, disabled_reason, key_id, secret,
			     prev_key_id, prev_secret, prev_until, failing_since, created_at, updated_at)
			 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
			w.ID, w.WorkspaceID, w.URL, w.Description, w.Enabled, w.DisabledReason, w.SecretKeyID, w.Secret,
			w.PrevKeyID, w.PrevSecret, nullMicros(w.PrevUntil), nullMicros(w.FailingSince), micros(w.CreatedAt), micros(w.UpdatedAt))
		switch {
		case s.dialect.IsForeignKeyViolation(err):
			return apperr.Wrap(apperr.NotFound, err, "workspace %q not found", w.WorkspaceID)
		case s.dialect.IsUniqueViolation(err):
			return apperr.Wrap(apperr.Conflict, err, "webhook %q exists", w.ID)
		case err != nil:
			return fmt.Errorf("create webhook %s: %w", w.ID, err)
		}
		return writeSubscriptions(ctx, tx, w.WorkspaceID, w.ID, w.Events)
	})
}

func writeSubscriptions(ctx context.Context, tx *sql.Tx, workspaceID, webhookID string, types []store.EventType) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM webhook_events WHERE webhook_id = $1`, webhookID); err != nil {
		return fmt.Errorf("subscriptions of %s: %w", webhookID, err)
	}
	seen := map[store.EventType]bool{}
	rb := newRowsBuilder(webhookID, workspaceID)
	for _, t := range types {
		if !seen[t] {
			seen[t] = true
			rb.add("($1, $2, ?)", string(t))
		}
	}
	if len(seen) == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO webhook_events (webhook_id, workspace_id, event_type) VALUES `+rb.String(), rb.args...); err != nil {
		return fmt.Errorf("subscriptions of %s: %w", webhookID, err)
	}
	return nil
}

// loadSubscriptions fills the Events of the webhooks, sorted.
func loadSubscriptions(ctx context.Context, q querier, hooks []store.Webhook) error {
	if len(hooks) == 0 {
		return nil
	}
	args := make([]any, len(hooks))
	at := map[string]int{}
	for i, w := range hooks {
		args[i] = w.ID
		at[w.ID] = i
		hooks[i].Events = []store.EventType{}
	}
	rows, err := q.QueryContext(ctx,
		`SELECT webhook_id, event_type FROM webhook_events WHERE webhook_id IN (`+placeholders(1, len(args))+`)
		 ORDER BY webhook_id, event_type`, args...)
	if err != nil {
		return fmt.Errorf("load subscriptions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var hook, typ string
		if err := rows.Scan(&hook, &typ); err != nil {
			return fmt.Errorf("load subscriptions: %w", err)
		}
		i := at[hook]
		hooks[i].Events = append(hooks[i].Events, store.EventType(typ))
	}
	return rows.Err()
}

// GetWebhook returns the workspace's webhook.
func (s *Store) GetWebhook(ctx context.Context, workspaceID, id string) (store.Webhook, error) {
	return getWebhook(ctx, s.read, workspaceID, id)
}

func getWebhook(ctx context.Context, q querier, workspaceID, id string) (store.Webhook, error) {
	w, err := scanWebhook(q.QueryRowContext(ctx,
		`SELECT `+webhookColumns+` FROM webhooks w WHERE w.workspace_id = $1 AND w.id = $2`, workspaceID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return w, errWebhookNotFound(id)
	}
	if err != nil {
		return w, fmt.Errorf("load webhook %s: %w", id, err)
	}
	hooks := []store.Webhook{w}
	if err := loadSubscriptions(ctx, q, hooks); err != nil {
		return w, err
	}
	return hooks[0], nil
}

// ListWebhooks returns one page of the workspace's webhooks, by id.
func (s *Store) ListWebhooks(ctx context.Context, workspaceID string, p store.ListParams) ([]store.Webhook, error) {
	out, err := queryAll(ctx, s.read, "list webhooks", scanWebhook,
		`SELECT `+webhookColumns+` FROM webhooks w WHERE w.workspace_id = $1 AND w.id > $2 ORDER BY w.id LIMIT $3`,
		workspaceID, p.After, pageLimit(p.Limit))
	if err != nil {
		return nil, err
	}
	return out, loadSubscriptions(ctx, s.read, out)
}

// ListAllWebhooks returns webhooks of every workspace, by id, after the id.
func (s *Store) ListAllWebhooks(ctx context.Context, afterID string, limit int) ([]store.Webhook, error) {
	return queryAll(ctx, s.read, "list all webhooks", scanWebhook,
		`SELECT `+webhookColumns+` FROM webhooks w WHERE w.id > $1 ORDER BY w.id LIMIT $2`,
		afterID, pageLimit(limit))
}

// ResealWebhook replaces the sealed secrets of w when they are still under
// the old key ids: a conditional UPDATE, so that a secret rotation through
// the API between the caller's read and this write is never overwritten.
func (s *Store) ResealWebhook(ctx context.Context, w store.Webhook, oldKeyID, oldPrevKeyID string) (bool, error) {
	res, err := s.write.ExecContext(ctx,
		`UPDATE webhooks SET key_id = $3, secret = $4, prev_key_id = $5, prev_secret = $6
		 WHERE workspace_id = $1 AND id = $2 AND key_id = $7 AND prev_key_id = $8`,
		w.WorkspaceID, w.ID, w.SecretKeyID, w.Secret, w.PrevKeyID, w.PrevSecret, oldKeyID, oldPrevKeyID)
	if err != nil {
		return false, fmt.Errorf("reseal webhook %s: %w", w.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("reseal webhook %s: %w", w.ID, err)
	}
	return n > 0, nil
}

// UpdateWebhook applies the patch: the row is locked first (an UPDATE, the
// one row lock both databases take with the same SQL), then read, changed
// and written back, so that two concurrent patches of different fields both
// apply.
func (s *Store) UpdateWebhook(ctx context.Context, workspaceID, id string, p store.WebhookPatch) (store.Webhook, error) {
	var out store.Webhook
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE webhooks SET updated_at = $3 WHERE workspace_id = $1 AND id = $2`,
			workspaceID, id, micros(p.At))
		if err != nil {
			return fmt.Errorf("update webhook %s: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("update webhook %s: %w", id, err)
		} else if n == 0 {
			return errWebhookNotFound(id)
		}
		w, err := getWebhook(ctx, tx, workspaceID, id)
		if err != nil {
			return err
		}
		if p.URL != nil {
			w.URL = *p.URL
		}
		if p.Description != nil {
			w.Description = *p.Description
		}
		if p.Enabled != nil {
			if *p.Enabled {
				w.DisabledReason, w.FailingSince = "", nil
			}
			w.Enabled = *p.Enabled
		}
		w.UpdatedAt = p.At
		if _, err := tx.ExecContext(ctx,
			`UPDATE webhooks SET url = $3, description = $4, enabled = $5, disabled_reason = $6, failing_since = $7, updated_at = $8
			 WHERE workspace_id = $1 AND id = $2`,
			workspaceID, id, w.URL, w.Description, w.Enabled, w.DisabledReason, nullMicros(w.FailingSince), micros(w.UpdatedAt)); err != nil {
			return fmt.Errorf("update webhook %s: %w", id, err)
		}
		if p.Events != nil {
			if err := writeSubscriptions(ctx, tx, workspaceID, id, p.Events); err != nil {
				return err
			}
		}
		out, err = getWebhook(ctx, tx, workspaceID, id)
		return err
	})
	return out, err
}

// DeleteWebhook deletes the webhook; its subscriptions, deliveries and
// attempts go with it (ON DELETE CASCADE).
func (s *Store) DeleteWebhook(ctx context.Context, workspaceID, id string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM webhooks WHERE workspace_id = $1 AND id = $2`, workspaceID, id)
		if err != nil {
			return fmt.Errorf("delete webhook %s: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("delete webhook %s: %w", id, err)
		} else if n == 0 {
			return errWebhookNotFound(id)
		}
		return nil
	})
}

// RotateWebhookSecret moves the current secret to the previous one and
// stores the new one. The SET expressions read the row as it was before
// the UPDATE on both databases, so the swap is one statement.
func (s *Store) RotateWebhookSecret(ctx context.Context, workspaceID, id string, r store.SecretRotation) (store.Webhook, error) {
	var out store.Webhook
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`UPDATE webhooks SET prev_key_id = key_id, prev_secret = secret, prev_until = $3,
			     key_id = $4, secret = $5, updated_at = $6
			 WHERE workspace_id = $1 AND id = $2`,
			workspaceID, id, micros(r.PrevUntil), r.KeyID, r.Secret, micros(r.At))
		if err != nil {
			return fmt.Errorf("rotate secret of %s: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("rotate secret of %s: %w", id, err)
		} else if n == 0 {
			return errWebhookNotFound(id)
		}
		out, err = getWebhook(ctx, tx, workspaceID, id)
		return err
	})
	return out, err
}

// TestWebhook writes the ping event and one delivery of it to the endpoint.
func (s *Store) TestWebhook(ctx context.Context, workspaceID, webhookID string, ev store.OutboxEvent) (store.Delivery, error) {
	var out store.Delivery
	ev.WorkspaceID = workspaceID
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := getWebhook(ctx, tx, workspaceID, webhookID); err != nil {
			return err
		}
		data := string(ev.Data)
		if len(ev.Data) == 0 {
			data = "{}"
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO outbox (id, workspace_id, type, data, created_at) VALUES ($1, $2, $3, $4, $5)`,
			ev.ID, workspaceID, string(ev.Type), data, micros(ev.CreatedAt)); err != nil {
			return fmt.Errorf("write test event: %w", err)
		}
		d := pendingDelivery{id.New(id.Delivery), webhookID, ev}
		if err := insertDeliveries(ctx, tx, []pendingDelivery{d}); err != nil {
			return err
		}
		var err error
		out, err = getDelivery(ctx, tx, workspaceID, webhookID, d.id)
		return err
	})
	return out, err
}

const deliveryColumns = `d.id, d.webhook_id, d.workspace_id, d.event_id, o.type, d.status, d.attempts,
	d.next_attempt_at, d.created_at, d.updated_at`

func scanDelivery(r scanner, more ...any) (store.Delivery, error) {
	var d store.Delivery
	var typ, status string
	var next sql.NullInt64
	var created, updated int64
	err := r.Scan(append([]any{&d.ID, &d.WebhookID, &d.WorkspaceID, &d.EventID, &typ, &status, &d.Attempts,
		&next, &created, &updated}, more...)...)
	if err != nil {
		return d, err
	}
	d.EventType, d.Status = store.EventType(typ), store.DeliveryStatus(status)
	d.NextAttemptAt = timePtr(next)
	d.CreatedAt, d.UpdatedAt = fromMicros(created), fromMicros(updated)
	return d, nil
}

// loadAttempts fills the AttemptLog of the deliveries, oldest first.
func loadAttempts(ctx context.Context, q querier, ds []store.Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	args := make([]any, len(ds))
	at := map[string]int{}
	for i, d := range ds {
		args[i] = d.ID
		at[d.ID] = i
		ds[i].AttemptLog = []store.DeliveryAttempt{}
	}
	rows, err := q.QueryContext(ctx,
		`SELECT delivery_id, at, status_code, latency_us, error FROM delivery_attempts
		 WHERE delivery_id IN (`+placeholders(1, len(args))+`) ORDER BY delivery_id, at, id`, args...)
	if err != nil {
		return fmt.Errorf("load attempts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var did string
		var a store.DeliveryAttempt
		var when, latency int64
		if err := rows.Scan(&did, &when, &a.StatusCode, &latency, &a.Error); err != nil {
			return fmt.Errorf("load attempts: %w", err)
		}
		a.At, a.Latency = fromMicros(when), time.Duration(latency)*time.Microsecond
		i := at[did]
		ds[i].AttemptLog = append(ds[i].AttemptLog, a)
	}
	return rows.Err()
}

// ListDeliveries returns the endpoint's deliveries, newest first.
func (s *Store) ListDeliveries(ctx context.Context, workspaceID, webhookID string, p store.ListParams) ([]store.Delivery, error) {
	if _, err := getWebhook(ctx, s.read, workspaceID, webhookID); err != nil {
		return nil, err
	}
	out, err := queryAll(ctx, s.read, "list deliveries",
		func(r scanner) (store.Delivery, error) { return scanDelivery(r) },
		`SELECT `+deliveryColumns+` FROM deliveries d JOIN outbox o ON o.id = d.event_id
		 WHERE d.workspace_id = $1 AND d.webhook_id = $2 AND ($3 = '' OR d.id < $3)
		 ORDER BY d.id DESC LIMIT $4`, workspaceID, webhookID, p.After, pageLimit(p.Limit))
	if err != nil {
		return nil, err
	}
	return out, loadAttempts(ctx, s.read, out)
}

// GetDelivery returns one delivery of the endpoint with its attempts.
func (s *Store) GetDelivery(ctx context.Context, workspaceID, webhookID, deliveryID string) (store.Delivery, error) {
	return getDelivery(ctx, s.read, workspaceID, webhookID, deliveryID)
}

func getDelivery(ctx context.Context, q querier, workspaceID, webhookID, deliveryID string) (store.Delivery, error) {
	d, err := scanDelivery(q.QueryRowContext(ctx,
		`SELECT `+deliveryColumns+` FROM deliveries d JOIN outbox o ON o.id = d.event_id
		 WHERE d.workspace_id = $1 AND d.webhook_id = $2 AND d.id = $3`, workspaceID, webhookID, deliveryID))
	if errors.Is(err, sql.ErrNoRows) {
		return d, apperr.New(apperr.NotFound, "delivery %q not found", deliveryID)
	}
	if err != nil {
		return d, fmt.Errorf("load delivery %s: %w", deliveryID, err)
	}
	ds := []store.Delivery{d}
	if err := loadAttempts(ctx, q, ds); err != nil {
		return d, err
	}
	return ds[0], nil
}

// RetryDelivery makes the delivery due at at. A lease in force is left
// alone: the worker holding it finishes its attempt first.
func (s *Store) RetryDelivery(ctx context.Context, workspaceID, webhookID, deliveryID string, at time.Time) (store.Delivery, error) {
	var out store.Delivery
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		w, err := getWebhook(ctx, tx, workspaceID, webhookID)
		if err != nil {
			return err
		}
		if !w.Enabled {
			return apperr.New(apperr.Conflict, "webhook %s is disabled; enable it before retrying its deliveries", webhookID)
		}
		res, err := tx.ExecContext(ctx,
			`UPDATE deliveries SET status = 'pending', next_attempt_at = $4, updated_at = $4
			 WHERE workspace_id = $1 AND webhook_id = $2 AND id = $3`, workspaceID, webhookID, deliveryID, micros(at))
		if err != nil {
			return fmt.Errorf("retry delivery %s: %w", deliveryID, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("retry delivery %s: %w", deliveryID, err)
		} else if n == 0 {
			return apperr.New(apperr.NotFound, "delivery %q not found", deliveryID)
		}
		out, err = getDelivery(ctx, tx, workspaceID, webhookID, deliveryID)
		return err
	})
	return out, err
}

// dueCondition selects the deliveries a worker may claim at $1: due, not
// leased (or the lease expired: its worker died), endpoint enabled.
const dueCondition = `d.next_attempt_at <= $1 AND d.lease_until < $1
	AND EXISTS (SELECT 1 FROM webhooks w WHERE w.id = d.webhook_id AND w.enabled)`

// DeliveriesDue reports whether some delivery is claimable at now.
func (s *Store) DeliveriesDue(ctx context.Context, now time.Time) (bool, error) {
	var one int
	err := s.read.QueryRowContext(ctx, `SELECT 1 FROM deliveries d WHERE `+dueCondition+` LIMIT 1`, micros(now)).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look for due deliveries: %w", err)
	}
	return true, nil
}

// DeliveryBacklog counts pending deliveries of enabled endpoints and finds
// the earliest due time among them (the deliveries_due index serves the
// minimum). Leased deliveries count: they are not sent yet.
func (s *Store) DeliveryBacklog(ctx context.Context, now time.Time) (store.DeliveryBacklog, error) {
	var b store.DeliveryBacklog
	var oldest sql.NullInt64
	err := s.read.QueryRowContext(ctx, `SELECT COUNT(*), MIN(d.next_attempt_at) FROM deliveries d
		WHERE d.next_attempt_at IS NOT NULL
		AND EXISTS (SELECT 1 FROM webhooks w WHERE w.id = d.webhook_id AND w.enabled)`).Scan(&b.Pending, &oldest)
	if err != nil {
		return b, fmt.Errorf("count the webhook backlog: %w", err)
	}
	if oldest.Valid {
		if due := now.Sub(fromMicros(oldest.Int64)); due > 0 {
			b.OldestDue = due
		}
	}
	return b, nil
}

// ClaimDeliveries leases due deliveries to owner. The UPDATE repeats the
// lease check outside the subquery: on PostgreSQL a row another worker
// leased between the subquery's snapshot and the update is re-checked on its
// new version and skipped, so a lease is never taken twice even where SKIP
// LOCKED is not in play; SKIP LOCKED makes concurrent claimers take other
// rows instead of waiting.
func (s *Store) ClaimDeliveries(ctx context.Context, owner string, now, leaseUntil time.Time, limit int, skip []string) ([]store.ClaimedDelivery, error) {
	if limit <= 0 {
		return nil, nil
	}
	var out []store.ClaimedDelivery
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		out = nil
		args := []any{micros(now), owner, micros(leaseUntil), limit}
		notIn := ""
		if len(skip) > 0 {
			notIn = " AND d.webhook_id NOT IN (" + placeholders(len(args)+1, len(skip)) + ")"
			for _, w := range skip {
				args = append(args, w)
			}
		}
		rows, err := tx.QueryContext(ctx,
			`UPDATE deliveries SET lease_owner = $2, lease_until = $3
			 WHERE next_attempt_at <= $1 AND lease_until < $1 AND id IN (
			     SELECT d.id FROM deliveries d WHERE `+dueCondition+notIn+`
			     ORDER BY d.next_attempt_at, d.id LIMIT $4`+s.dialect.SkipLocked+`)
			 RETURNING id`, args...)
		if err != nil {
			return fmt.Errorf("claim deliveries: %w", err)
		}
		var ids []any
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return fmt.Errorf("claim deliveries: %w", err)
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("claim deliveries: %w", err)
		}
		if len(ids) == 0 {
			return nil
		}
		rows, err = tx.QueryContext(ctx,
			`SELECT `+deliveryColumns+`, o.data, o.created_at, `+webhookColumns+`
			 FROM deliveries d JOIN outbox o ON o.id = d.event_id JOIN webhooks w ON w.id = d.webhook_id
			 WHERE d.id IN (`+placeholders(1, len(ids))+`) ORDER BY d.next_attempt_at, d.id`, ids...)
		if err != nil {
			return fmt.Errorf("load claimed deliveries: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var c store.ClaimedDelivery
			var data string
			var evAt int64
			var hook webhookRow
			var err error
			c.Delivery, err = scanDelivery(rows, append([]any{&data, &evAt}, webhookDest(&hook)...)...)
			if err != nil {
				return fmt.Errorf("load claimed deliveries: %w", err)
			}
			hook.finish()
			c.Webhook = hook.Webhook
			c.Event = store.OutboxEvent{ID: c.EventID, WorkspaceID: c.WorkspaceID, Type: c.EventType, Data: []byte(data), CreatedAt: fromMicros(evAt)}
			out = append(out, c)
		}
		return rows.Err()
	})
	return out, err
}

// ReleaseDelivery clears owner's lease so the delivery can be claimed at
// once (by a replica that is not shutting down).
func (s *Store) ReleaseDelivery(ctx context.Context, owner, deliveryID string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx,
			`UPDATE deliveries SET lease_owner = '', lease_until = 0 WHERE id = $1 AND lease_owner = $2`, deliveryID, owner)
		if err != nil {
			return fmt.Errorf("release delivery %s: %w", deliveryID, err)
		}
		return nil
	})
}

// RecordAttempt logs the attempt and moves the delivery and its endpoint on.
// The attempt is logged even when owner lost the lease meanwhile (it did
// happen), but only the lease holder changes the delivery's state.
func (s *Store) RecordAttempt(ctx context.Context, owner, deliveryID string, o store.AttemptOutcome) (bool, error) {
	var disabled bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		disabled = false
		var webhookID, leaseOwner string
		err := tx.QueryRowContext(ctx, `SELECT webhook_id, lease_owner FROM deliveries WHERE id = $1`, deliveryID).Scan(&webhookID, &leaseOwner)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // the endpoint was deleted meanwhile
		}
		if err != nil {
			return fmt.Errorf("record attempt of %s: %w", deliveryID, err)
		}
		a := o.Attempt
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO delivery_attempts (id, delivery_id, at, status_code, latency_us, error) VALUES ($1, $2, $3, $4, $5, $6)`,
			id.New("att"), deliveryID, micros(a.At), a.StatusCode, a.Latency.Microseconds(), a.Error); err != nil {
			return fmt.Errorf("record attempt of %s: %w", deliveryID, err)
		}
		if o.Succeeded {
			if _, err := tx.ExecContext(ctx,
				`UPDATE webhooks SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL`, webhookID); err != nil {
				return fmt.Errorf("record success of %s: %w", webhookID, err)
			}
		} else if _, err := tx.ExecContext(ctx,
			`UPDATE webhooks SET failing_since = $2 WHERE id = $1 AND failing_since IS NULL`, webhookID, micros(a.At)); err != nil {
			return fmt.Errorf("record failure of %s: %w", webhookID, err)
		}
		if leaseOwner != owner {
			return nil
		}
		status := store.DeliveryPending
		switch {
		case o.Succeeded:
			status = store.DeliverySucceeded
		case o.NextAttemptAt == nil:
			status = store.DeliveryFailed
		}
		if _, err := tx.ExecContext(ctx,
			`UPDATE deliveries SET status = $3, attempts = attempts + 1, next_attempt_at = $4,
			     lease_owner = '', lease_until = 0, updated_at = $5
			 WHERE id = $1 AND lease_owner = $2`,
			deliveryID, owner, string(status), nullMicros(o.NextAttemptAt), micros(a.At)); err != nil {
			return fmt.Errorf("record attempt of %s: %w", deliveryID, err)
		}
		if status != store.DeliveryFailed {
			return nil
		}
		// Failing since (at or before) this delivery's first attempt, which
		// was a whole retry schedule ago: the endpoint is given up on.
		res, err := tx.ExecContext(ctx,
			`UPDATE webhooks SET enabled = FALSE, disabled_reason = $2, updated_at = $3
			 WHERE id = $1 AND enabled AND failing_since IS NOT NULL
			   AND failing_since <= (SELECT MIN(at) FROM delivery_attempts WHERE delivery_id = $4)`,
			webhookID, "every delivery attempt failed for the whole retry schedule", micros(a.At), deliveryID)
		if err != nil {
			return fmt.Errorf("disable webhook %s: %w", webhookID, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("disable webhook %s: %w", webhookID, err)
		}
		disabled = n > 0
		return nil
	})
	return disabled, err
}

// webhookRow collects a webhook's columns where they are scanned as part
// of a wider row.
type webhookRow struct {
	store.Webhook
	prevUntil, failing sql.NullInt64
	created, updated   int64
}

func webhookDest(w *webhookRow) []any {
	return []any{&w.ID, &w.WorkspaceID, &w.URL, &w.Description, &w.Enabled, &w.DisabledReason,
		&w.SecretKeyID, &w.Secret, &w.PrevKeyID, &w.PrevSecret, &w.prevUntil, &w.failing, &w.created, &w.updated}
}

func (w *webhookRow) finish() {
	w.PrevUntil, w.FailingSince = timePtr(w.prevUntil), timePtr(w.failing)
	w.CreatedAt, w.UpdatedAt = fromMicros(w.created), fromMicros(w.updated)
}
