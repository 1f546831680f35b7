package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/engine"
	"github.com/samplit/samplit/internal/id"
	"github.com/samplit/samplit/internal/store"
)

var _ store.Campaigns = (*Store)(nil)

// The slots' delay histograms have one column per bucket of the engine's.
var _ [engine.DelayBuckets]int64 = store.CampaignCounters{}.Delays

func errCampaignNotFound(ref string) error {
	return apperr.New(apperr.NotFound, "campaign %q not found", ref)
}

// CreateCampaign stores c and its variants in one transaction.
func (s *Store) CreateCampaign(ctx context.Context, c store.Campaign) error {
	settings, err := json.Marshal(c.Settings)
	if err != nil {
		return fmt.Errorf("encode settings of %s: %w", c.ID, err)
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		err := s.insertParent(ctx, tx, "campaign", c.ID, c.Key, c.WorkspaceID,
			`INSERT INTO campaigns (id, workspace_id, key, name, channel, objective, mode, audience_size,
			     status, settings, winner, created_at, updated_at, started_at, completed_at)
			 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
			c.ID, c.WorkspaceID, c.Key, c.Name, c.Channel, c.Objective, c.Mode, c.AudienceSize,
			string(c.Status), string(settings), c.Winner,
			micros(c.CreatedAt), micros(c.UpdatedAt), nullMicros(c.StartedAt), nullMicros(c.CompletedAt))
		if err != nil {
			return err
		}
		if len(c.Variants) == 0 {
			return apperr.New(apperr.Invalid, "campaign %s has no variants", c.ID)
		}
		rb := newRowsBuilder(c.ID)
		for i, v := range c.Variants {
			rb.add("(?, $1, ?, ?, ?, ?)", v.ID, v.Key, v.Name, payloadText(v.Payload), i)
		}
		_, err = tx.ExecContext(ctx,
			`INSERT INTO campaign_variants (id, campaign_id, key, name, payload, position) VALUES `+rb.String(), rb.args...)
		if s.dialect.IsUniqueViolation(err) {
			return apperr.Wrap(apperr.Conflict, err, "variant ids and keys must be unique")
		}
		if err != nil {
			return fmt.Errorf("create variants of %s: %w", c.ID, err)
		}
		return nil
	})
}

const campaignColumns = `id, workspace_id, key, name, channel, objective, mode, audience_size, status, settings,
	winner, sent, waves, created_at, updated_at, started_at, completed_at, split_pick, no_difference_at`

func scanCampaign(r scanner) (store.Campaign, error) {
	var c store.Campaign
	var status, settings string
	var created, updated int64
	var started, completed, noDiff sql.NullInt64
	err := r.Scan(&c.ID, &c.WorkspaceID, &c.Key, &c.Name, &c.Channel, &c.Objective, &c.Mode, &c.AudienceSize,
		&status, &settings, &c.Winner, &c.Sent, &c.Waves, &created, &updated, &started, &completed, &c.SplitPick, &noDiff)
	if err != nil {
		return c, err
	}
	c.Status = store.Status(status)
	if err := json.Unmarshal([]byte(settings), &c.Settings); err != nil {
		return c, fmt.Errorf("decode settings of %s: %w", c.ID, err)
	}
	c.CreatedAt, c.UpdatedAt = fromMicros(created), fromMicros(updated)
	c.StartedAt, c.CompletedAt, c.NoDifferenceAt = timePtr(started), timePtr(completed), timePtr(noDiff)
	return c, nil
}

// GetCampaign finds the campaign by id or, failing that, by key.
func (s *Store) GetCampaign(ctx context.Context, workspaceID, ref string) (store.Campaign, error) {
	return getCampaign(ctx, s.read, workspaceID, ref)
}

func getCampaign(ctx context.Context, q querier, workspaceID, ref string) (store.Campaign, error) {
	c, err := rowByRef(ctx, q, "campaigns", "campaign", campaignColumns, scanCampaign, errCampaignNotFound, workspaceID, ref)
	if err != nil {
		return c, err
	}
	list := []store.Campaign{c}
	if err := loadCampaignVariants(ctx, q, list); err != nil {
		return c, err
	}
	return list[0], nil
}

// loadCampaignVariants fills the variants and the stopped keys of the
// campaigns.
func loadCampaignVariants(ctx context.Context, q querier, list []store.Campaign) error {
	if len(list) == 0 {
		return nil
	}
	args := make([]any, len(list))
	at := make(map[string]int, len(list))
	for i, c := range list {
		args[i] = c.ID
		at[c.ID] = i
	}
	rows, err := q.QueryContext(ctx,
		`SELECT campaign_id, id, key, name, payload, position, stopped_at FROM campaign_variants
		 WHERE campaign_id IN (`+placeholders(1, len(args))+`) ORDER BY campaign_id, position`, args...)
	if err != nil {
		return fmt.Errorf("load campaign variants: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var cid, payload string
		var v store.Variant
		var stopped sql.NullInt64
		if err := rows.Scan(&cid, &v.ID, &v.Key, &v.Name, &payload, &v.Position, &stopped); err != nil {
			return fmt.Errorf("load campaign variants: %w", err)
		}
		v.Payload = json.RawMessage(payload)
		c := &list[at[cid]]
		c.Variants = append(c.Variants, v)
		if stopped.Valid {
			c.Stopped = append(c.Stopped, v.Key)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load campaign variants: %w", err)
	}
	return nil
}

// ListCampaigns returns one page of the workspace's campaigns, by id.
func (s *Store) ListCampaigns(ctx context.Context, workspaceID string, p store.ListParams) ([]store.Campaign, error) {
	list, err := listPage(ctx, s.read, "campaigns", campaignColumns, scanCampaign, workspaceID, p)
	if err != nil {
		return nil, err
	}
	if err := loadCampaignVariants(ctx, s.read, list); err != nil {
		return nil, err
	}
	return list, nil
}

// TransitionCampaign moves the campaign to t.To if its status is one of
// t.From, as one conditional UPDATE, like TransitionExperiment.
func (s *Store) TransitionCampaign(ctx context.Context, workspaceID, id string, t store.Transition) (store.Campaign, error) {
	var out store.Campaign
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		applied, err := transition(ctx, tx, "campaigns", workspaceID, id, t, "")
		if err != nil {
			return err
		}
		out, err = getCampaign(ctx, tx, workspaceID, id)
		if err != nil {
			return err
		}
		if !applied {
			return apperr.New(apperr.Conflict, "campaign %q is %s; it cannot become %s", out.Key, out.Status, t.To)
		}
		return nil
	})
	if err != nil {
		return store.Campaign{}, err
	}
	return out, nil
}

// DeclareCampaignWinner sets the winner when none is recorded yet.
func (s *Store) DeclareCampaignWinner(ctx context.Context, workspaceID, id, winner string, at time.Time, events ...store.OutboxEvent) (bool, error) {
	return s.setCampaignOnce(ctx, "winner", workspaceID, id, at, events,
		`UPDATE campaigns SET winner = $3, updated_at = $4 WHERE workspace_id = $1 AND id = $2 AND winner = ''`, winner)
}

// MarkCampaignNoDifference records when the no_difference decision was
// first made.
func (s *Store) MarkCampaignNoDifference(ctx context.Context, workspaceID, id string, at time.Time, events ...store.OutboxEvent) (bool, error) {
	return s.setCampaignOnce(ctx, "no difference", workspaceID, id, at, events,
		`UPDATE campaigns SET no_difference_at = $3, updated_at = $4 WHERE workspace_id = $1 AND id = $2 AND no_difference_at IS NULL`, micros(at))
}

// setCampaignOnce runs update ($1 the workspace, $2 the campaign, $3 value,
// $4 the time), which changes the row only while the decision is not
// recorded; the one call that changed it writes the events in its
// transaction. NotFound when the campaign is not in the workspace.
func (s *Store) setCampaignOnce(ctx context.Context, what, workspaceID, id string, at time.Time, events []store.OutboxEvent, update string, value any) (bool, error) {
	var set bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, update, workspaceID, id, value, micros(at))
		if err != nil {
			return fmt.Errorf("record %s of %s: %w", what, id, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("record %s of %s: %w", what, id, err)
		}
		if n == 0 {
			if _, err := getCampaign(ctx, tx, workspaceID, id); err != nil {
				return err
			}
		}
		set = n > 0
		if !set {
			return nil
		}
		return writeEvents(ctx, tx, workspaceID, events)
	})
	return set, err
}

// PickCampaignSplit sets the split pick when the stored one is old.
func (s *Store) PickCampaignSplit(ctx context.Context, workspaceID, id, old, pick string) (string, error) {
	var out string
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx,
			`UPDATE campaigns SET split_pick = $4 WHERE workspace_id = $1 AND id = $2 AND split_pick = $3`,
			workspaceID, id, old, pick); err != nil {
			return fmt.Errorf("pick the split variant of %s: %w", id, err)
		}
		err := tx.QueryRowContext(ctx, `SELECT split_pick FROM campaigns WHERE workspace_id = $1 AND id = $2`,
			workspaceID, id).Scan(&out)
		if errors.Is(err, sql.ErrNoRows) {
			return errCampaignNotFound(id)
		}
		if err != nil {
			return fmt.Errorf("pick the split variant of %s: %w", id, err)
		}
		return nil
	})
	return out, err
}

// StopCampaignVariant marks the variant stopped by the guardrail when it is
// not yet.
func (s *Store) StopCampaignVariant(ctx context.Context, workspaceID, campaignID, variantID string, at time.Time, events ...store.OutboxEvent) (bool, error) {
	var set bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := lockCampaign(ctx, tx, workspaceID, campaignID, at); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx,
			`UPDATE campaign_variants SET stopped_at = $3 WHERE campaign_id = $1 AND id = $2 AND stopped_at IS NULL`,
			campaignID, variantID, micros(at))
		if err != nil {
			return fmt.Errorf("stop variant %s of %s: %w", variantID, campaignID, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("stop variant %s of %s: %w", variantID, campaignID, err)
		}
		set = n > 0
		if !set {
			return nil
		}
		return writeEvents(ctx, tx, workspaceID, events)
	})
	return set, err
}

// lockCampaign takes the campaign's row lock (see lockFunnel) and checks
// that it is in the workspace: sends and events of one campaign commit one
// at a time, so that a recipient's row is read and written without a lost
// update. It counts the write in the campaign's data version, the decision
// loop's watermark.
func lockCampaign(ctx context.Context, tx *sql.Tx, workspaceID, campaignID string, at time.Time) error {
	_, err := lockCampaignSent(ctx, tx, workspaceID, campaignID, at)
	return err
}

// lockCampaignQuery is lockCampaign's statement: $1 the campaign, $2 its
// workspace, $3 the write's time; it returns the sends so far.
const lockCampaignQuery = `UPDATE campaigns SET updated_at = CASE WHEN updated_at > $3 THEN updated_at ELSE $3 END,
     data_version = data_version + 1
 WHERE id = $1 AND workspace_id = $2 RETURNING sent`

// queueLockCampaign is lockCampaign in a pipe: after the flush, *found
// says whether the campaign is in the workspace.
func queueLockCampaign(p *pipe, workspaceID, campaignID string, at time.Time) *bool {
	return queueFound(p, lockCampaignQuery, []any{campaignID, workspaceID, micros(at)}, "lock campaign "+campaignID)
}

// lockCampaignSent is lockCampaign returning the campaign's sends so far.
func lockCampaignSent(ctx context.Context, tx *sql.Tx, workspaceID, campaignID string, at time.Time) (int64, error) {
	var sent int64
	err := tx.QueryRowContext(ctx, lockCampaignQuery, campaignID, workspaceID, micros(at)).Scan(&sent)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, errCampaignNotFound(campaignID)
	}
	if err != nil {
		return 0, fmt.Errorf("lock campaign %s: %w", campaignID, err)
	}
	return sent, nil
}

// CampaignRecipients returns the variant id of each recipient already sent.
// The reads run in a read-only transaction so that they probe the sends
// (Dialect.ProbeJoins), as the serving path's writes do.
func (s *Store) CampaignRecipients(ctx context.Context, workspaceID, campaignID string, recipients []string) (map[string]string, error) {
	var out map[string]string
	err := s.inReadPipeTx(ctx, func(p *pipe) error {
		found := queueFound(p, `SELECT id FROM campaigns WHERE id = $1 AND workspace_id = $2`,
			[]any{campaignID, workspaceID}, "look up campaign "+campaignID)
		sends := map[string]*sendRow{}
		s.queueLoadSends(p, campaignID, dedupe(recipients), sends)
		if err := p.flush(); err != nil {
			return err
		}
		if !*found {
			return errCampaignNotFound(campaignID)
		}
		out = make(map[string]string, len(sends))
		for r, row := range sends {
			out[r] = row.variant
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// slotDelta is the change of one campaign_slots row.
type slotDelta struct {
	sent, delivered, opens, clicks, unsubscribes, bounces, conversions, late int64
	value, valueSq                                                           float64
	// sentAtSum and lastSentAt (micros, 0: none) describe the send times,
	// delays the objective's delays (store.CampaignCounters).
	sentAtSum  float64
	lastSentAt int64
	delays     [engine.DelayBuckets]int64
	// test holds the anytime-valid tests' sums of the tested sends
	// (store.CampaignCounters, engine.CampaignArm.Test).
	test delta
}

// campaignTestColumns are campaign_slots' columns of the anytime-valid tests'
// sums (migration 00015), in slotDelta's and CampaignCounters' order.
var campaignTestColumns = []string{"tested", "test_sum", "test_sum_sq", "inv_p", "inv_p2", "y_inv_p", "y_inv_p2", "y2_inv_p2",
	"expected", "expected_squares", "inv_expected"}

type slotKey struct {
	variant string
	slot    int64
}

// RecordSends stores the sends of one call: new recipients get a row, a
// wave number and their counters; recipients already sent (a race with
// another call) keep their variant.
func (s *Store) RecordSends(ctx context.Context, b store.SendBatch) (store.SendsResult, error) {
	var out store.SendsResult
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		out = store.SendsResult{VariantIDs: make([]string, len(b.Items)), New: make([]bool, len(b.Items))}
		sent, err := lockCampaignSent(ctx, tx, b.WorkspaceID, b.CampaignID, b.At)
		if err != nil {
			return err
		}
		if b.ExpectSent >= 0 && sent != b.ExpectSent {
			return apperr.New(apperr.Conflict, "campaign %s has %d sends, not %d: another call sent meanwhile", b.CampaignID, sent, b.ExpectSent)
		}
		var waves int64
		if err := tx.QueryRowContext(ctx, `SELECT waves FROM campaigns WHERE id = $1`, b.CampaignID).Scan(&waves); err != nil {
			return fmt.Errorf("load waves of %s: %w", b.CampaignID, err)
		}
		wave := waves + 1
		now := micros(b.At)
		inserted := map[string]bool{}
		err = chunks(b.Items, s.maxRows, func(items []store.Send) error {
			rb := newRowsBuilder(b.CampaignID, wave, now)
			for _, it := range items {
				rb.add("($1, ?, ?, $2, $3, CAST(? AS DOUBLE PRECISION))", it.Recipient, it.VariantID, it.Propensity)
			}
			rows, err := tx.QueryContext(ctx,
				`INSERT INTO campaign_sends (campaign_id, recipient, variant_id, wave, sent_at, propensity)
				 VALUES `+rb.String()+` ON CONFLICT (campaign_id, recipient) DO NOTHING RETURNING recipient`, rb.args...)
			if err != nil {
				return fmt.Errorf("record sends of %s: %w", b.CampaignID, err)
			}
			defer rows.Close()
			for rows.Next() {
				var r string
				if err := rows.Scan(&r); err != nil {
					return fmt.Errorf("record sends of %s: %w", b.CampaignID, err)
				}
				inserted[r] = true
			}
			return rows.Err()
		})
		if err != nil {
			return err
		}
		var raced []string
		perVariant := map[string]int64{}
		tested := map[string]*delta{} // the tests' sums of the new sends, by variant
		testDelta := func(v string) *delta {
			if tested[v] == nil {
				tested[v] = &delta{}
			}
			return tested[v]
		}
		for i, it := range b.Items {
			if inserted[it.Recipient] {
				out.VariantIDs[i], out.New[i] = it.VariantID, true
				perVariant[it.VariantID]++
				if p := it.Propensity; p > 0 {
					testDelta(it.VariantID).AddUnit(p)
					for v, w := range b.Probs {
						if w > 0 {
							testDelta(v).AddExpected(w)
						}
					}
				}
				delete(inserted, it.Recipient) // a recipient twice in the batch is new once
			} else {
				raced = append(raced, it.Recipient)
			}
		}
		if len(raced) > 0 {
			stored := map[string]*sendRow{}
			p := &pipe{s: s, ctx: ctx, tx: tx}
			s.queueLoadSends(p, b.CampaignID, dedupe(raced), stored)
			if err := p.flush(); err != nil {
				return err
			}
			for i, it := range b.Items {
				if r := stored[it.Recipient]; !out.New[i] && r != nil {
					out.VariantIDs[i] = r.variant
				}
			}
		}
		if len(perVariant) == 0 {
			return nil
		}
		var n int64
		slots := map[slotKey]*slotDelta{}
		slot := hourOf(b.At)
		wb := newRowsBuilder(b.CampaignID, wave, now)
		for _, v := range sortedKeys(perVariant) {
			n += perVariant[v]
			slots[slotKey{v, slot}] = &slotDelta{sent: perVariant[v], lastSentAt: now,
				sentAtSum: float64(perVariant[v]) * float64(now-slot) / 1e6}
			wb.add("($1, $2, ?, ?, $3)", v, perVariant[v])
		}
		for v, t := range tested {
			d := slots[slotKey{v, slot}]
			if d == nil { // a variant with no new send in the call still had its chance
				d = &slotDelta{}
				slots[slotKey{v, slot}] = d
			}
			d.test = *t
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO campaign_waves (campaign_id, wave, variant_id, sends, at) VALUES `+wb.String()+`
			 ON CONFLICT (campaign_id, wave, variant_id) DO UPDATE SET sends = campaign_waves.sends + excluded.sends`,
			wb.args...); err != nil {
			return fmt.Errorf("record wave of %s: %w", b.CampaignID, err)
		}
		if _, err := tx.ExecContext(ctx,
			`UPDATE campaigns SET sent = sent + $2, waves = $3 WHERE id = $1`, b.CampaignID, n, wave); err != nil {
			return fmt.Errorf("count sends of %s: %w", b.CampaignID, err)
		}
		out.Wave = wave
		return s.applySlots(ctx, tx, b.CampaignID, slots)
	})
	return out, err
}

// applySlots writes the slot increments as "col = col + excluded.col"
// upserts, in key order so that concurrent transactions lock rows in one
// order.
func (s *Store) applySlots(ctx context.Context, tx *sql.Tx, campaignID string, slots map[slotKey]*slotDelta) error {
	p := &pipe{s: s, ctx: ctx, tx: tx}
	s.queueSlots(p, campaignID, slots)
	return p.flush()
}

// queueSlots queues applySlots' statements.
func (s *Store) queueSlots(p *pipe, campaignID string, slots map[slotKey]*slotDelta) {
	keys := make([]slotKey, 0, len(slots))
	for k := range slots {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b slotKey) int {
		if c := strings.Compare(a.variant, b.variant); c != 0 {
			return c
		}
		return int(min(max(a.slot-b.slot, -1), 1))
	})
	_ = chunks(keys, s.maxRows, func(ks []slotKey) error {
		rb := newRowsBuilder(campaignID)
		for _, k := range ks {
			d := slots[k]
			args := []any{k.variant, k.slot, d.sent, d.delivered, d.opens, d.clicks, d.unsubscribes, d.bounces, d.conversions,
				d.value, d.valueSq, d.late, d.sentAtSum, d.lastSentAt}
			for _, n := range d.delays {
				args = append(args, n)
			}
			t := d.test
			args = append(args, t.Units, t.Sum, t.SumSquares, t.InvP, t.InvP2, t.YInvP, t.YInvP2, t.Y2InvP2,
				t.Expected, t.ExpectedSquares, t.InvExpected)
			rb.add("($1, ?, ?, ?, ?, ?, ?, ?, ?, ?, CAST(? AS DOUBLE PRECISION), CAST(? AS DOUBLE PRECISION), ?, "+
				"CAST(? AS DOUBLE PRECISION), ?"+strings.Repeat(", ?", engine.DelayBuckets)+", ?"+
				strings.Repeat(", CAST(? AS DOUBLE PRECISION)", len(campaignTestColumns)-1)+")", args...)
		}
		p.queue(PipeStmt{Query: `INSERT INTO campaign_slots (campaign_id, variant_id, slot, sent, delivered, opens, clicks, unsubscribes,
			     bounces, conversions, value_sum, value_sum_sq, late, sent_at_sum, last_sent_at, ` + delayColumns + `,
			     ` + strings.Join(campaignTestColumns, ", ") + `)
			 VALUES ` + rb.String() + `
			 ON CONFLICT (campaign_id, variant_id, slot) DO UPDATE SET
			     sent = campaign_slots.sent + excluded.sent,
			     delivered = campaign_slots.delivered + excluded.delivered,
			     opens = campaign_slots.opens + excluded.opens,
			     clicks = campaign_slots.clicks + excluded.clicks,
			     unsubscribes = campaign_slots.unsubscribes + excluded.unsubscribes,
			     bounces = campaign_slots.bounces + excluded.bounces,
			     conversions = campaign_slots.conversions + excluded.conversions,
			     value_sum = campaign_slots.value_sum + excluded.value_sum,
			     value_sum_sq = campaign_slots.value_sum_sq + excluded.value_sum_sq,
			     late = campaign_slots.late + excluded.late,
			     sent_at_sum = campaign_slots.sent_at_sum + excluded.sent_at_sum,
			     last_sent_at = CASE WHEN excluded.last_sent_at > campaign_slots.last_sent_at
			         THEN excluded.last_sent_at ELSE campaign_slots.last_sent_at END,
			     ` + delayUpdates + `,
			     ` + campaignTestUpdates, Args: rb.args,
			Wrap: func(err error) error { return fmt.Errorf("update campaign counters of %s: %w", campaignID, err) }})
		return nil
	})
}

// delayCols are the delay histogram's columns (migrations 00008 and 00009);
// delayColumns lists them, and delayUpdates adds excluded's to them in
// campaign_slots.
var delayCols = func() []string {
	var cols []string
	for i := range engine.DelayBuckets {
		cols = append(cols, fmt.Sprintf("delay_%02d", i))
	}
	return cols
}()

var delayColumns, delayUpdates = strings.Join(delayCols, ", "), delaySums("campaign_slots")

// campaignTestUpdates adds excluded's test sums to campaign_slots' own.
var campaignTestUpdates = addExcluded("campaign_slots", campaignTestColumns)

// delaySums returns the upsert clauses that add excluded's delay histogram
// to the table's.
func delaySums(table string) string { return addExcluded(table, delayCols) }

// RecordCampaignEvents applies the batches in one transaction, campaign by
// campaign in id order (lock order).
func (s *Store) RecordCampaignEvents(ctx context.Context, batches []store.CampaignEventBatch) ([][]store.EventResult, error) {
	return eachInPipeTx(ctx, s, batches, func(b store.CampaignEventBatch) string { return b.CampaignID }, s.campaignEvents)
}

// sendRow is a campaign_sends row as an event sees it.
type sendRow struct {
	variant                                                 string
	sentAt                                                  int64
	delivered, opened, clicked, unsubscribed, bounced, conv sql.NullInt64
	value                                                   float64
	propensity                                              float64 // > 0: a tested send
	// touched says that an event of the batch changed the row.
	touched bool
}

// objectiveSet reports whether the send has earned the objective.
func (r *sendRow) objectiveSet(objective string) bool {
	switch objective {
	case store.CampaignOpen:
		return r.opened.Valid
	case store.CampaignClick:
		return r.clicked.Valid
	case "value":
		return r.conv.Valid
	}
	return false
}

// campaignEvents applies one batch in three steps, each one round trip
// through a pipeline, whatever the batch's size (it was three or four
// statements per event, each a round trip on PostgreSQL):
//  1. lock the campaign and read the sends of the batch's recipients;
//  2. claim the idempotency keys of the events that are not rejected;
//  3. apply the events in order to the sends in memory (campaignEvent), then
//     store the events, the sends they changed and the slot increments,
//     which go out with the COMMIT.
func (s *Store) campaignEvents(p *pipe, b store.CampaignEventBatch) ([]store.EventResult, error) {
	cid := b.CampaignID
	found := queueLockCampaign(p, b.WorkspaceID, cid, batchTime(b.Items, func(ev store.CampaignEvent) time.Time { return ev.At }))
	recipients := sortedKeysOf(b.Items, func(ev store.CampaignEvent) string { return ev.Recipient })
	sends := make(map[string]*sendRow, len(recipients))
	s.queueLoadSends(p, cid, recipients, sends)
	if err := p.flush(); err != nil {
		return nil, err
	}
	if !*found {
		return nil, errCampaignNotFound(cid)
	}

	// A rejected event's key is not spent, so that it can be sent again
	// once its cause is gone. Keys repeated within the batch are
	// duplicates after their first use; keys already stored are absent from
	// RETURNING.
	res := make([]store.EventResult, len(b.Items))
	keyed := map[string]int{}
	var keys []string
	for i, ev := range b.Items {
		r := sends[ev.Recipient]
		switch {
		case r == nil:
			res[i] = store.EventResult{Outcome: store.OutcomeRejected, Reason: fmt.Sprintf("recipient %q was never sent this campaign", ev.Recipient)}
		case micros(ev.At) < r.sentAt:
			// An open or click cannot precede its send; counting it (even
			// one dated year 1) would also give it a negative delay.
			res[i] = store.EventResult{Outcome: store.OutcomeRejected, Field: "at", Reason: fmt.Sprintf("dated %s, before its send at %s",
				ev.At.UTC().Format(time.RFC3339), fromMicros(r.sentAt).UTC().Format(time.RFC3339))}
		case !slices.Contains(store.CampaignEventTypes(), ev.Type):
			res[i] = store.EventResult{Outcome: store.OutcomeRejected, Field: "type", Reason: fmt.Sprintf("unknown event type %q", ev.Type)}
		case ev.IdempotencyKey == "":
		default:
			if _, dup := keyed[ev.IdempotencyKey]; dup {
				res[i] = store.EventResult{Outcome: store.OutcomeDuplicate}
				continue
			}
			keyed[ev.IdempotencyKey] = i
			keys = append(keys, ev.IdempotencyKey)
		}
	}
	if len(keys) > 0 {
		slices.Sort(keys) // lock order
		claimed := make(map[string]bool, len(keys))
		s.queueClaimCampaignKeys(p, b, keys, keyed, claimed)
		if err := p.flush(); err != nil {
			return nil, err
		}
		for _, k := range keys {
			if !claimed[k] {
				res[keyed[k]] = store.EventResult{Outcome: store.OutcomeDuplicate}
			}
		}
	}

	slots := map[slotKey]*slotDelta{}
	var applied []int // the events stored, in order
	for i, ev := range b.Items {
		if res[i].Outcome != "" {
			continue
		}
		res[i] = campaignEvent(b, ev, sends[ev.Recipient], slots)
		applied = append(applied, i)
	}
	_ = chunks(applied, s.maxRows, func(idx []int) error {
		rb := newRowsBuilder(cid)
		for _, i := range idx {
			ev := b.Items[i]
			rb.add("($1, ?, ?, ?, ?, ?, ?)", id.New(id.Event), ev.Recipient, ev.Type, ev.Value, micros(ev.At), res[i].Outcome == store.OutcomeAccepted)
		}
		p.queue(PipeStmt{Query: `INSERT INTO campaign_events (campaign_id, id, recipient, type, value, at, counted) VALUES ` + rb.String(),
			Args: rb.args, Wrap: func(err error) error { return fmt.Errorf("store events of %s: %w", cid, err) }})
		return nil
	})
	s.queueUpdateSends(p, cid, recipients, sends)
	s.queueSlots(p, cid, slots)
	return res, nil
}

// queueLoadSends queues the reads of the recipients' sends into out, which
// is complete after the next flush; a recipient never sent is absent.
func (s *Store) queueLoadSends(p *pipe, campaignID string, recipients []string, out map[string]*sendRow) {
	s.queueKeyReads(p, campaignID, recipients, func(values string, args []any) []PipeStmt {
		return []PipeStmt{{
			Query: `SELECT s.recipient, s.variant_id, s.sent_at, s.delivered_at, s.opened_at, s.clicked_at, s.unsubscribed_at,
			     s.bounced_at, s.converted_at, s.value, s.propensity
			 FROM (VALUES ` + values + `) AS v
			 JOIN campaign_sends s ON ` + probeJoin("s", "campaign_id", "recipient"),
			Args: args,
			Rows: func(rows Rows) error {
				for rows.Next() {
					var rcpt string
					r := &sendRow{}
					if err := rows.Scan(&rcpt, &r.variant, &r.sentAt, &r.delivered, &r.opened, &r.clicked, &r.unsubscribed,
						&r.bounced, &r.conv, &r.value, &r.propensity); err != nil {
						return err
					}
					out[rcpt] = r
				}
				return rows.Err()
			},
			Wrap: func(err error) error { return fmt.Errorf("load sends of %s: %w", campaignID, err) },
		}}
	})
}

// queueClaimCampaignKeys queues the claims of keys (sorted), each the key
// of event keyed[k]; after the flush, claimed holds those this transaction
// stored. Retention expires keys by when the server first saw them, not by
// the event's own (client-given) time: a key sent today for an event dated
// last month is kept the whole retention period.
func (s *Store) queueClaimCampaignKeys(p *pipe, b store.CampaignEventBatch, keys []string, keyed map[string]int, claimed map[string]bool) {
	_ = chunks(keys, s.maxRows, func(ks []string) error {
		rb := newRowsBuilder(b.CampaignID)
		for _, k := range ks {
			keyTime := b.ReceivedAt
			if keyTime.IsZero() {
				keyTime = b.Items[keyed[k]].At
			}
			rb.add("($1, ?, ?)", k, micros(keyTime))
		}
		p.queue(PipeStmt{
			Query: `INSERT INTO campaign_event_keys (campaign_id, key, created_at) VALUES ` + rb.String() + `
			 ON CONFLICT (campaign_id, key) DO NOTHING
			 RETURNING key`,
			Args: rb.args,
			Rows: collectSet(claimed),
			Wrap: func(err error) error { return fmt.Errorf("claim event keys of %s: %w", b.CampaignID, err) },
		})
		return nil
	})
}

// queueUpdateSends queues the UPDATE of the sends the batch's events
// changed, each written once with its final state, in recipient order.
func (s *Store) queueUpdateSends(p *pipe, campaignID string, recipients []string, sends map[string]*sendRow) {
	var touched []string
	for _, rcpt := range recipients {
		if r := sends[rcpt]; r != nil && r.touched {
			touched = append(touched, rcpt)
		}
	}
	p.probeJoins()
	_ = chunks(touched, s.maxRows, func(rs []string) error {
		rb := newRowsBuilder(campaignID)
		for _, rcpt := range rs {
			r := sends[rcpt]
			rb.add("($1, ?, CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS DOUBLE PRECISION))",
				rcpt, r.delivered, r.opened, r.clicked, r.unsubscribed, r.bounced, r.conv, r.value)
		}
		p.queue(PipeStmt{
			Query: `UPDATE campaign_sends SET delivered_at = v.column3, opened_at = v.column4, clicked_at = v.column5,
			     unsubscribed_at = v.column6, bounced_at = v.column7, converted_at = v.column8, value = v.column9
			 FROM (VALUES ` + rb.String() + `) AS v
			 WHERE ` + probeJoin("campaign_sends", "campaign_id", "recipient"),
			Args: rb.args,
			Wrap: func(err error) error { return fmt.Errorf("update sends of %s: %w", campaignID, err) },
		})
		return nil
	})
}

// campaignEvent applies one event, not rejected and its key (if any)
// claimed, to its send r, and its counters to slots. Whether it counts
// depends only on its own time and its send's (within the window or not),
// and each counter moves at most once per send, on the first counted event
// that sets it (or implies it), so the counters are the same whatever
// order events arrive in.
func campaignEvent(b store.CampaignEventBatch, ev store.CampaignEvent, r *sendRow, slots map[slotKey]*slotDelta) store.EventResult {
	now := micros(ev.At)
	key := slotKey{r.variant, hourOf(fromMicros(r.sentAt))}
	d := slots[key]
	if d == nil {
		d = &slotDelta{}
		slots[key] = d
	}
	if now-r.sentAt > b.Window.Microseconds() {
		d.late++
		return store.EventResult{Outcome: store.OutcomeLate, Reason: "after the attribution window of its send: stored, not counted"}
	}
	r.touched = true
	before := r.objectiveSet(b.Objective)
	set := func(col *sql.NullInt64, n *int64) {
		if !col.Valid {
			*col = sql.NullInt64{Int64: now, Valid: true}
			*n++
		}
	}
	switch ev.Type {
	case store.CampaignDelivered:
		set(&r.delivered, &d.delivered)
	case store.CampaignOpen:
		set(&r.delivered, &d.delivered)
		set(&r.opened, &d.opens)
	case store.CampaignClick:
		set(&r.delivered, &d.delivered)
		set(&r.opened, &d.opens)
		set(&r.clicked, &d.clicks)
	case store.CampaignUnsubscribe:
		set(&r.delivered, &d.delivered)
		set(&r.unsubscribed, &d.unsubscribes)
	case store.CampaignBounce:
		set(&r.bounced, &d.bounces)
	case store.CampaignConversion:
		first := !r.conv.Valid
		set(&r.conv, &d.conversions)
		if b.Objective == "value" && r.propensity > 0 {
			d.test.AddOutcome(r.propensity, r.value, r.value+ev.Value, first)
		}
		// The per-send value's square changes from v² to (v+x)².
		d.value += ev.Value
		d.valueSq += (r.value+ev.Value)*(r.value+ev.Value) - r.value*r.value
		r.value += ev.Value
	}
	if !before && r.objectiveSet(b.Objective) && b.Objective != "value" && r.propensity > 0 {
		d.test.AddOutcome(r.propensity, 0, 1, true) // an open or a click: y goes from 0 to 1, once
	}
	if !before && r.objectiveSet(b.Objective) {
		// The objective's counter moved: record how long after the send the
		// server learnt of it.
		received := micros(b.ReceivedAt)
		if b.ReceivedAt.IsZero() {
			received = now
		}
		d.delays[engine.DelayBucket(time.Duration(max(0, received-r.sentAt))*time.Microsecond)]++
	}
	return store.EventResult{Outcome: store.OutcomeAccepted}
}

// FinishedCampaignCounters returns the totals of the workspace's most
// recently completed campaigns (store.Campaigns.FinishedCampaignCounters),
// in one statement.
func (s *Store) FinishedCampaignCounters(ctx context.Context, workspaceID string, limit int) ([]store.FinishedCampaign, error) {
	sum := func(col string) string { return `CAST(COALESCE(SUM(sl.` + col + `), 0) AS BIGINT)` }
	// A row per variant, each a campaign with that one variant.
	scan := func(r scanner) (store.FinishedCampaign, error) {
		f := store.FinishedCampaign{Variants: make([]store.CampaignCounters, 1)}
		c := &f.Variants[0]
		err := r.Scan(&f.ID, &f.Objective, &c.VariantID, &c.Sent, &c.Bounces, &c.Opens, &c.Clicks, &c.Conversions)
		return f, err
	}
	rows, err := queryAll(ctx, s.read, "load finished campaigns of "+workspaceID, scan,
		`WITH done AS (SELECT id, objective, completed_at FROM campaigns
		               WHERE workspace_id = $1 AND completed_at IS NOT NULL
		               ORDER BY completed_at DESC, id DESC LIMIT $2)
		 SELECT d.id, d.objective, v.id, `+sum("sent")+`, `+sum("bounces")+`, `+sum("opens")+`, `+sum("clicks")+`, `+sum("conversions")+`
		 FROM done d
		 JOIN campaign_variants v ON v.campaign_id = d.id
		 LEFT JOIN campaign_slots sl ON sl.campaign_id = d.id AND sl.variant_id = v.id
		 GROUP BY d.id, d.objective, d.completed_at, v.id, v.position
		 ORDER BY d.completed_at DESC, d.id DESC, v.position`, workspaceID, limit)
	if err != nil {
		return nil, err
	}
	return mergeRuns(rows, func(f store.FinishedCampaign) string { return f.ID },
		func(into *store.FinishedCampaign, f store.FinishedCampaign) {
			into.Variants = append(into.Variants, f.Variants...)
		}), nil
}

// CampaignCounts returns the slots with sends and the waves.
func (s *Store) CampaignCounts(ctx context.Context, workspaceID, campaignID string) (store.CampaignCounts, error) {
	var out store.CampaignCounts
	var one int
	err := s.read.QueryRowContext(ctx, `SELECT 1 FROM campaigns WHERE id = $1 AND workspace_id = $2`,
		campaignID, workspaceID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return out, errCampaignNotFound(campaignID)
	}
	if err != nil {
		return out, fmt.Errorf("look up campaign %s: %w", campaignID, err)
	}
	rows, err := s.read.QueryContext(ctx,
		`SELECT variant_id, slot, sent, delivered, opens, clicks, unsubscribes, bounces, conversions,
		     value_sum, value_sum_sq, late, sent_at_sum, last_sent_at, `+delayColumns+`, `+strings.Join(campaignTestColumns, ", ")+`
		 FROM campaign_slots WHERE campaign_id = $1 ORDER BY variant_id, slot`, campaignID)
	if err != nil {
		return out, fmt.Errorf("load counters of %s: %w", campaignID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var c store.CampaignCounters
		var slot, last int64
		dest := []any{&c.VariantID, &slot, &c.Sent, &c.Delivered, &c.Opens, &c.Clicks, &c.Unsubscribes,
			&c.Bounces, &c.Conversions, &c.Value, &c.ValueSquares, &c.Late, &c.SentAtSum, &last}
		for i := range c.Delays {
			dest = append(dest, &c.Delays[i])
		}
		dest = append(dest, &c.Tested, &c.TestSum, &c.TestSumSquares, &c.InvP, &c.InvP2, &c.YInvP, &c.YInvP2, &c.Y2InvP2,
			&c.Expected, &c.ExpectedSquares, &c.InvExpected)
		if err := rows.Scan(dest...); err != nil {
			return out, fmt.Errorf("load counters of %s: %w", campaignID, err)
		}
		c.Slot = fromMicros(slot)
		if last > 0 {
			c.LastSentAt = fromMicros(last)
		}
		out.Slots = append(out.Slots, c)
	}
	if err := rows.Err(); err != nil {
		return out, fmt.Errorf("load counters of %s: %w", campaignID, err)
	}
	rows.Close()
	wrows, err := s.read.QueryContext(ctx,
		`SELECT wave, variant_id, sends, at FROM campaign_waves
		 WHERE campaign_id = $1 AND wave > (SELECT waves FROM campaigns WHERE id = $1) - $2
		 ORDER BY wave, variant_id`, campaignID, store.MaxResultWaves)
	if err != nil {
		return out, fmt.Errorf("load waves of %s: %w", campaignID, err)
	}
	defer wrows.Close()
	for wrows.Next() {
		var w store.WaveCounters
		var at int64
		if err := wrows.Scan(&w.Wave, &w.VariantID, &w.Sends, &at); err != nil {
			return out, fmt.Errorf("load waves of %s: %w", campaignID, err)
		}
		w.At = fromMicros(at)
		out.Waves = append(out.Waves, w)
	}
	if err := wrows.Err(); err != nil {
		return out, fmt.Errorf("load waves of %s: %w", campaignID, err)
	}
	return out, nil
}
