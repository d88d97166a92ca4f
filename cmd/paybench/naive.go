package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/messages"
	"github.com/payworker/payworker/worker"
)

// The naive worker's consumer and connection names.
const (
	naiveConsumer = "naive"
	naiveConnName = "paybench-naive"
)

// runNaive is `paybench naive-worker`: the worker as the nats.go examples
// write it, the baseline of scenario b. One Consume callback handles one
// message at a time, synchronously: decode, SET NX the reference in Redis,
// charge through the Dintero client, publish the result (waiting for its
// PubAck), SET the result in Redis, Ack. It reads NATS_URL, REDIS_URL,
// DINTERO_API_URL, DINTERO_ACCOUNT_ID, DINTERO_CLIENT_ID and
// DINTERO_CLIENT_SECRET, and runs until SIGTERM.
func runNaive(ctx context.Context, getenv func(string) string) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	nc, err := nats.Connect(getenv("NATS_URL"), nats.Name(naiveConnName))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	// The streams and a consumer configured as payworker's own.
	if err := worker.Setup(ctx, js, worker.Config{Consumer: naiveConsumer}); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	ropts, err := redis.ParseURL(getenv("REDIS_URL"))
	if err != nil {
		return err
	}
	rdb := redis.NewClient(ropts)
	defer rdb.Close()
	gw, err := dintero.New(dintero.Config{
		AccountID: getenv("DINTERO_ACCOUNT_ID"), ClientID: getenv("DINTERO_CLIENT_ID"),
		ClientSecret: getenv("DINTERO_CLIENT_SECRET"), APIURL: getenv("DINTERO_API_URL"),
	})
	if err != nil {
		return err
	}
	cons, err := js.Consumer(ctx, messages.StreamRequests, naiveConsumer)
	if err != nil {
		return err
	}
	h := &naiveHandler{js: js, rdb: rdb, gw: gw, log: log}
	cc, err := cons.Consume(func(m jetstream.Msg) { h.handle(ctx, m) })
	if err != nil {
		return err
	}
	<-ctx.Done()
	cc.Stop()
	return nil
}

type naiveHandler struct {
	js  jetstream.JetStream
	rdb *redis.Client
	gw  *dintero.Client
	log *slog.Logger
}

func (h *naiveHandler) handle(ctx context.Context, msg jetstream.Msg) {
	req, err := messages.DecodeChargeRequest(msg.Data())
	if err != nil {
		_ = msg.Term()
		return
	}
	meta, err := msg.Metadata()
	if err != nil {
		_ = msg.Term()
		return
	}
	ref := req.Session.Order.MerchantReference
	key := "naive:" + ref
	fresh, err := h.rdb.SetNX(ctx, key, "pending", 24*time.Hour).Result()
	if err != nil {
		_ = msg.Nak()
		return
	}
	if !fresh {
		_ = msg.Ack() // seen before
		return
	}
	res := messages.ChargeResult{
		MerchantReference: ref, Amount: req.Session.Order.Amount, Currency: req.Session.Order.Currency,
		PaymentProductType: req.Payment.PaymentProductType, Operation: req.Payment.Operation, Attempts: 1,
	}
	tx, err := h.gw.PaySession(ctx, msg.Data())
	var derr *dintero.Error
	switch {
	case err == nil:
		res.Outcome = messages.OutcomeSucceeded
	case errors.As(err, &derr) && derr.Kind == dintero.KindDeclined:
		res.Outcome = messages.OutcomeDeclined
	default:
		h.log.Warn("charge failed", "merchant_reference", ref, "err", err)
		_ = h.rdb.Del(ctx, key).Err()
		_ = msg.Nak()
		return
	}
	res.Status, res.TransactionID, res.CompletedAt = tx.Status, tx.ID, time.Now().UTC()
	data, err := json.Marshal(&res)
	if err != nil {
		_ = msg.Nak()
		return
	}
	out := &nats.Msg{Subject: messages.ResultSubject(messages.KindCharge, res.Outcome), Data: data, Header: nats.Header{}}
	out.Header.Set(messages.HeaderMsgID, messages.ResultMsgID(ref, res.Outcome, meta.Sequence.Stream))
	if _, err := h.js.PublishMsg(ctx, out); err != nil {
		_ = msg.Nak()
		return
	}
	if err := h.rdb.Set(ctx, key, data, 24*time.Hour).Err(); err != nil {
		h.log.Warn("storing the result", "merchant_reference", ref, "err", err)
	}
	_ = msg.Ack()
}
