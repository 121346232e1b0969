// Package metrics exports a server.Server's counters (server.Stats) and its
// bus's state to Prometheus. It is a separate package so that programs
// that use package server without Prometheus do not import it.
//
// The collector reads the server when Prometheus scrapes it: nothing is
// kept in between, and the server's hot paths only bump atomic counters.
// Wire it in with
//
//	mux.Handle("/metrics", metrics.Handler(srv, metrics.Options{Bus: bus}))
//
// or register NewCollector(srv, o) in a registry of your own.
//
// # Metrics
//
// All are prefixed siobridge_; counters end in _total, durations are in
// seconds.
//
//	siobridge_clients{transport}               gauge     Engine.IO sessions open ("polling", "websocket")
//	siobridge_sockets                          gauge     namespace connections open
//	siobridge_namespaces                       gauge     namespaces that exist
//	siobridge_rooms                            gauge     rooms with at least one socket (not the sockets' own rooms)
//	siobridge_connects_total                   counter   namespace connections accepted
//	siobridge_connect_errors_total             counter   namespace connections refused (CONNECT_ERROR: bad token, ...)
//	siobridge_events_received_total            counter   EVENT packets received from clients
//	siobridge_events_sent_total                counter   EVENT packets queued to clients, one per recipient
//	siobridge_broadcasts_total                 counter   broadcasts performed (API and queue)
//	siobridge_broadcast_deliveries_total       counter   packets broadcasts queued to sockets
//	siobridge_delivery_latency_seconds{origin} histogram broadcast start to last socket's packet queued
//	siobridge_queue_messages_received_total    counter   queue messages received
//	siobridge_queue_messages_total{outcome}    counter   the same by outcome: applied, malformed, unsupported, own, reply
//	siobridge_queue_publish_errors_total       counter   failed publishes of the server's own operations
//	siobridge_recovery_sessions_total{outcome} counter   connection state recovery's sessions: saved, not_saved (refused or failed by the store), restored
//	siobridge_bus_up                           gauge     1 while the bus is connected to its broker (Options.Bus)
//	siobridge_bus_reconnects_total             counter   reconnections of the bus after a broker outage (Options.Bus)
//	siobridge_bus_published_total              counter   messages the bus handed to the broker (Options.Bus)
//	siobridge_bus_delivered_total              counter   messages the bus delivered to subscribers (Options.Bus)
//	siobridge_bus_publish_errors_total         counter   failed Publish calls of the bus (Options.Bus)
//
// siobridge_delivery_latency_seconds is server.Stats's LocalLatency
// (origin="local": from Emit on this server) and QueueLatency
// (origin="queue": from the moment the bus handed the message over); see
// server.Stats for the exact definition and server.LatencyBuckets for the
// buckets.
//
// The time the bus spent disconnected is not counted by the buses; Prometheus
// derives it from siobridge_bus_up, e.g. the seconds disconnected over the
// last hour: (1 - avg_over_time(siobridge_bus_up[1h])) * 3600.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/siobridge/siobridge/queue"
	"github.com/siobridge/siobridge/server"
)

// Options configure a Collector.
type Options struct {
	// Bus is the bus the server uses (WithAdapter, ConsumeQueue), for the
	// siobridge_bus_ metrics: siobridge_bus_up when it reports its health
	// (queue.HealthReporter), the counters when it keeps them
	// (queue.StatsReporter; the Redis, AMQP and NATS buses do both). Nil
	// leaves them out.
	Bus queue.Bus
}

// Collector is a prometheus.Collector of a server's metrics.
type Collector struct {
	srv *server.Server
	bus queue.Bus

	clients, sockets, namespaces, rooms                              *prometheus.Desc
	connects, connectErrors, eventsIn, eventsOut                     *prometheus.Desc
	broadcasts, deliveries, latency                                  *prometheus.Desc
	queueReceived, queueMessages, queuePublishErrs                   *prometheus.Desc
	recoverySessions                                                 *prometheus.Desc
	busUp, busReconnects, busPublished, busDelivered, busPublishErrs *prometheus.Desc
	busDisconnected                                                  *prometheus.Desc
}

// NewCollector returns a collector of srv's metrics.
func NewCollector(srv *server.Server, o Options) *Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("siobridge_"+name, help, labels, nil)
	}
	return &Collector{srv: srv, bus: o.Bus,
		clients:          d("clients", "Engine.IO sessions open, by transport (a session being upgraded counts as polling).", "transport"),
		sockets:          d("sockets", "Socket.IO namespace connections open, over all namespaces."),
		namespaces:       d("namespaces", "Namespaces that exist."),
		rooms:            d("rooms", "Rooms with at least one socket, summed over namespaces (each socket's own room not counted)."),
		connects:         d("connects_total", "Namespace connections accepted."),
		connectErrors:    d("connect_errors_total", "Namespace connections refused with CONNECT_ERROR (missing or bad token, unknown namespace, ...)."),
		eventsIn:         d("events_received_total", "EVENT packets received from clients."),
		eventsOut:        d("events_sent_total", "EVENT packets queued to clients, one per recipient (direct emits and broadcast deliveries)."),
		broadcasts:       d("broadcasts_total", "Broadcasts performed for this server's clients, from its API or from the queue."),
		deliveries:       d("broadcast_deliveries_total", "Packets that broadcasts queued to sockets."),
		latency:          d("delivery_latency_seconds", "Time from the start of a broadcast (origin=local: Emit on this server; origin=queue: the bus handing the message over) to its packet queued to the last selected socket.", "origin"),
		queueReceived:    d("queue_messages_received_total", "Messages the server received from the queue."),
		queueMessages:    d("queue_messages_total", "Messages received from the queue, by outcome: applied, malformed, unsupported (or addressed to others), own (this server's, skipped), reply (routed to a waiting call).", "outcome"),
		queuePublishErrs: d("queue_publish_errors_total", "Failed publishes of the server's own operations to the queue."),
		recoverySessions: d("recovery_sessions_total", "Sessions of connection state recovery, by outcome: saved (kept as their client dropped), not_saved (the store refused or failed to keep them: their client comes back to a fresh session), restored (taken back by their client).", "outcome"),
		busUp:            d("bus_up", "1 while the bus is connected to its broker, else 0."),
		busReconnects:    d("bus_reconnects_total", "Reconnections of the bus to its broker after an outage."),
		busDisconnected:  d("bus_disconnected_seconds_total", "Time the bus has spent without its broker, the outage under way included."),
		busPublished:     d("bus_published_total", "Messages the bus handed to the broker."),
		busDelivered:     d("bus_delivered_total", "Messages the bus delivered to its subscribers."),
		busPublishErrs:   d("bus_publish_errors_total", "Publish calls of the bus that failed."),
	}
}

// Describe sends the descriptions of every metric (prometheus.Collector).
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.clients, c.sockets, c.namespaces, c.rooms, c.connects, c.connectErrors,
		c.eventsIn, c.eventsOut, c.broadcasts, c.deliveries, c.latency, c.queueReceived, c.queueMessages, c.queuePublishErrs, c.recoverySessions} {
		ch <- d
	}
	if _, ok := c.bus.(queue.HealthReporter); ok {
		ch <- c.busUp
	}
	if _, ok := c.bus.(queue.StatsReporter); ok {
		for _, d := range []*prometheus.Desc{c.busReconnects, c.busDisconnected, c.busPublished, c.busDelivered, c.busPublishErrs} {
			ch <- d
		}
	}
}

// Collect reads the server and the bus (prometheus.Collector).
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.srv.Stats()
	gauge := func(d *prometheus.Desc, v int, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	count := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(c.clients, st.Polling, "polling")
	gauge(c.clients, st.WebSocket, "websocket")
	gauge(c.sockets, st.Sockets)
	gauge(c.namespaces, st.Namespaces)
	gauge(c.rooms, st.Rooms)
	count(c.connects, st.Connects)
	count(c.connectErrors, st.ConnectErrors)
	count(c.eventsIn, st.EventsIn)
	count(c.eventsOut, st.EventsOut)
	count(c.broadcasts, st.Broadcasts)
	count(c.deliveries, st.Deliveries)
	ch <- histogram(c.latency, st.LocalLatency, "local")
	ch <- histogram(c.latency, st.QueueLatency, "queue")
	q := st.Queue
	count(c.queueReceived, q.Received())
	count(c.queueMessages, q.Applied, "applied")
	count(c.queueMessages, q.Malformed, "malformed")
	count(c.queueMessages, q.Unsupported, "unsupported")
	count(c.queueMessages, q.Own, "own")
	count(c.queueMessages, q.Replies, "reply")
	count(c.queuePublishErrs, q.PublishErrs)
	count(c.recoverySessions, st.Recovery.Saved, "saved")
	count(c.recoverySessions, st.Recovery.NotSaved, "not_saved")
	count(c.recoverySessions, st.Recovery.Restored, "restored")
	if h, ok := c.bus.(queue.HealthReporter); ok {
		up := 0
		if h.Connected() {
			up = 1
		}
		gauge(c.busUp, up)
	}
	if r, ok := c.bus.(queue.StatsReporter); ok {
		bs := r.Stats()
		count(c.busReconnects, bs.Reconnects)
		ch <- prometheus.MustNewConstMetric(c.busDisconnected, prometheus.CounterValue, bs.Disconnected.Seconds())
		count(c.busPublished, bs.Published)
		count(c.busDelivered, bs.Delivered)
		count(c.busPublishErrs, bs.PublishErrs)
	}
}

// histogram is a server.Histogram as a Prometheus histogram (cumulative
// buckets, in seconds).
func histogram(d *prometheus.Desc, h server.Histogram, origin string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(server.LatencyBuckets))
	var cum uint64
	for i, bound := range server.LatencyBuckets {
		cum += h.Buckets[i]
		buckets[bound.Seconds()] = cum
	}
	return prometheus.MustNewConstHistogram(d, h.Count, h.Sum.Seconds(), buckets, origin)
}

// Handler returns an http.Handler serving srv's metrics in Prometheus's
// formats, with the Go runtime's and the process's metrics (go_*,
// process_*), from a registry of its own.
func Handler(srv *server.Server, o Options) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(srv, o), collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}
