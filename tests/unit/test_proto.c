/*
 * test_proto.c -- the wire protocol: round trip of every message type, the
 * strict decoder's refusals (hostile lengths and counts, nesting, wrong
 * types, NUL bytes, truncation at every offset), msgpack-to-JSON, and the
 * libevent connection over a socketpair.
 */
#include <sys/socket.h>

#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <msgpack.h>

#include "conn.h"
#include "evstream.h"
#include "mpjson.h"
#include "proto.h"
#include "xmalloc.h"
#include "unit.h"

/* Encode, strip the length prefix, decode; fails the test on error. */
static void
roundtrip(const struct proto_msg *in, struct proto_msg *out)
{
	uint8_t		*frame;
	size_t		 len;
	uint32_t	 plen;
	char		 err[256];

	ck_assert_int_eq(proto_encode(in, &frame, &len), 0);
	ck_assert_int_eq(proto_frame_length(frame, len, &plen), 1);
	ck_assert_uint_eq(plen + 4, len);
	if (proto_decode(frame + 4, plen, out, err, sizeof(err)) != 0)
		ck_abort_msg("decode failed: %s", err);
	ck_assert_int_eq(out->type, in->type);
	ck_assert_uint_eq(out->id, in->id);
	free(frame);
}

/* Build a payload with msgpack-c's packer for the hostile cases. */
struct pk {
	msgpack_sbuffer	sb;
	msgpack_packer	pk;
};

static void
pk_init(struct pk *p)
{
	msgpack_sbuffer_init(&p->sb);
	msgpack_packer_init(&p->pk, &p->sb, msgpack_sbuffer_write);
}

static void
pk_key(struct pk *p, const char *k)
{
	msgpack_pack_str_with_body(&p->pk, k, strlen(k));
}

static int
decode_raw(const void *buf, size_t len, char *err, size_t errlen)
{
	struct proto_msg	m;
	int			r;

	r = proto_decode(buf, len, &m, err, errlen);
	if (r == 0)
		proto_msg_free(&m);
	return (r);
}

START_TEST(test_roundtrip_session)
{
	struct proto_msg	in, out;

	memset(&in, 0, sizeof(in));
	in.type = PROTO_HELLO;
	in.u.hello.version = PROTO_VERSION;
	in.u.hello.role = PROTO_ROLE_PROXY;
	in.u.hello.pid = 4242;
	in.u.hello.program = "llmux-proxyd";
	in.u.hello.unprivileged = true;
	roundtrip(&in, &out);
	ck_assert_uint_eq(out.u.hello.version, PROTO_VERSION);
	ck_assert_int_eq(out.u.hello.role, PROTO_ROLE_PROXY);
	ck_assert_uint_eq(out.u.hello.pid, 4242);
	ck_assert_str_eq(out.u.hello.program, "llmux-proxyd");
	ck_assert(out.u.hello.unprivileged);
	proto_msg_free(&out);

	memset(&in, 0, sizeof(in));
	in.type = PROTO_ERROR;
	in.id = 7;
	in.u.error.code = "forbidden";
	in.u.error.message = "uid 1000 may not use this socket";
	roundtrip(&in, &out);
	ck_assert_str_eq(out.u.error.code, "forbidden");
	ck_assert_str_eq(out.u.error.message, in.u.error.message);
	proto_msg_free(&out);

	memset(&in, 0, sizeof(in));
	in.type = PROTO_PING;
	in.id = 9;
	roundtrip(&in, &out);
	proto_msg_free(&out);
	in.type = PROTO_PONG;
	roundtrip(&in, &out);
	proto_msg_free(&out);
}
END_TEST

START_TEST(test_roundtrip_config)
{
	struct proto_msg	 in, out;
	struct proto_model_info	 models[2];
	char			*aliases[] = { "gpt-4", "big", NULL };
	char			*keys[] = { "sk-1", NULL };

	memset(&in, 0, sizeof(in));
	memset(models, 0, sizeof(models));
	models[0].name = "llama";
	models[0].port = 8001;
	models[0].aliases.v = aliases;
	models[0].aliases.n = 2;
	models[1].name = "qwen";
	models[1].port = 8002;
	models[1].served = "Qwen/Qwen2.5-7B";
	models[1].max_concurrency = 4;
	in.type = PROTO_CONFIG;
	in.u.config.generation = 3;
	in.u.config.models = models;
	in.u.config.n_models = 2;
	in.u.config.port = 3000;
	in.u.config.admin_port = 3001;
	in.u.config.listen_address = "0.0.0.0";
	in.u.config.allow_unauthenticated = true;
	in.u.config.request_timeout_secs = 300;
	in.u.config.max_queue_per_model = 16384;
	in.u.config.max_body_bytes = (uint64_t)32 << 20;
	in.u.config.max_header_bytes = 65536;
	in.u.config.max_connections = 4096;
	in.u.config.max_connections_per_ip = 1024;
	in.u.config.max_buffered_body_mb = 128;
	in.u.config.header_timeout_ms = 10000;
	in.u.config.body_timeout_ms = 30000;
	in.u.config.keepalive_timeout_secs = 75;
	in.u.config.api_keys.v = keys;
	in.u.config.api_keys.n = 1;
	roundtrip(&in, &out);
	ck_assert_uint_eq(out.u.config.generation, 3);
	ck_assert_uint_eq(out.u.config.n_models, 2);
	ck_assert_str_eq(out.u.config.models[0].name, "llama");
	ck_assert_uint_eq(out.u.config.models[0].port, 8001);
	ck_assert_uint_eq(out.u.config.models[0].aliases.n, 2);
	ck_assert_str_eq(out.u.config.models[0].aliases.v[1], "big");
	ck_assert_ptr_null(out.u.config.models[0].aliases.v[2]);
	ck_assert_str_eq(out.u.config.models[1].name, "qwen");
	ck_assert_uint_eq(out.u.config.models[1].aliases.n, 0);
	ck_assert_ptr_null(out.u.config.models[0].served);
	ck_assert_uint_eq(out.u.config.models[0].max_concurrency, 0);
	ck_assert_str_eq(out.u.config.models[1].served, "Qwen/Qwen2.5-7B");
	ck_assert_uint_eq(out.u.config.models[1].max_concurrency, 4);
	ck_assert_uint_eq(out.u.config.port, 3000);
	ck_assert_uint_eq(out.u.config.admin_port, 3001);
	ck_assert_uint_eq(out.u.config.metrics_port, 0);
	ck_assert_str_eq(out.u.config.listen_address, "0.0.0.0");
	ck_assert_ptr_null(out.u.config.admin_address);
	ck_assert_uint_eq(out.u.config.max_body_bytes, (uint64_t)32 << 20);
	ck_assert_uint_eq(out.u.config.max_connections_per_ip, 1024);
	ck_assert_uint_eq(out.u.config.max_buffered_body_mb, 128);
	ck_assert_uint_eq(out.u.config.header_timeout_ms, 10000);
	ck_assert_uint_eq(out.u.config.body_timeout_ms, 30000);
	ck_assert_uint_eq(out.u.config.keepalive_timeout_secs, 75);
	ck_assert_uint_eq(out.u.config.api_keys.n, 1);
	ck_assert_str_eq(out.u.config.api_keys.v[0], "sk-1");
	ck_assert_ptr_null(out.u.config.admin_token);
	ck_assert(out.u.config.allow_unauthenticated);
	proto_msg_free(&out);
}
END_TEST

START_TEST(test_roundtrip_data_plane)
{
	struct proto_msg		in, out;
	struct proto_model_status	ms[2];

	memset(&in, 0, sizeof(in));
	in.type = PROTO_DEMAND;
	in.u.demand.model = "a";
	in.u.demand.queued = 12;
	in.u.demand.in_flight = 3;
	in.u.demand.oldest_ms = 1500;
	in.u.demand.done = 1ull << 40;
	roundtrip(&in, &out);
	ck_assert_str_eq(out.u.demand.model, "a");
	ck_assert_uint_eq(out.u.demand.queued, 12);
	ck_assert_uint_eq(out.u.demand.in_flight, 3);
	ck_assert_uint_eq(out.u.demand.oldest_ms, 1500);
	ck_assert_uint_eq(out.u.demand.done, 1ull << 40);
	proto_msg_free(&out);

	memset(&in, 0, sizeof(in));
	memset(ms, 0, sizeof(ms));
	ms[0].name = "a";
	ms[0].state = PROTO_MS_READY;
	ms[0].port = 8001;
	ms[0].generation = 2;
	ms[0].eviction = (struct eviction){ WEIGHTS_OFFLOAD,
	    PROCESS_KEEP_RUNNING };
	ms[1].name = "b";
	ms[1].state = PROTO_MS_FAILED;
	ms[1].reason = "exited with status 1";
	ms[1].eviction = EVICTION_DEFAULT;
	in.type = PROTO_STATE;
	in.u.state.manual = true;
	in.u.state.pinned = "a";
	in.u.state.switcher = "active:a";
	in.u.state.models = ms;
	in.u.state.n_models = 2;
	roundtrip(&in, &out);
	ck_assert(out.u.state.manual);
	ck_assert_str_eq(out.u.state.pinned, "a");
	ck_assert_str_eq(out.u.state.switcher, "active:a");
	ck_assert_uint_eq(out.u.state.n_models, 2);
	ck_assert_int_eq(out.u.state.models[0].state, PROTO_MS_READY);
	ck_assert_uint_eq(out.u.state.models[0].port, 8001);
	ck_assert_uint_eq(out.u.state.models[0].generation, 2);
	ck_assert_int_eq(out.u.state.models[0].eviction.weights,
	    WEIGHTS_OFFLOAD);
	ck_assert_ptr_null(out.u.state.models[0].reason);
	ck_assert_int_eq(out.u.state.models[1].state, PROTO_MS_FAILED);
	ck_assert_str_eq(out.u.state.models[1].reason, "exited with status 1");
	ck_assert_int_eq(out.u.state.models[1].eviction.process, PROCESS_STOP);
	proto_msg_free(&out);

	memset(&in, 0, sizeof(in));
	in.type = PROTO_DRAIN;
	in.u.drain.model = "a";
	in.u.drain.drain_id = 77;
	roundtrip(&in, &out);
	ck_assert_uint_eq(out.u.drain.drain_id, 77);
	proto_msg_free(&out);
	in.type = PROTO_DRAINED;
	roundtrip(&in, &out);
	ck_assert_str_eq(out.u.drain.model, "a");
	proto_msg_free(&out);

	memset(&in, 0, sizeof(in));
	in.type = PROTO_READY;
	in.u.ready.model = "b";
	in.u.ready.port = 8002;
	in.u.ready.generation = 5;
	roundtrip(&in, &out);
	ck_assert_uint_eq(out.u.ready.port, 8002);
	ck_assert_uint_eq(out.u.ready.generation, 5);
	proto_msg_free(&out);
	in.type = PROTO_UNREACHABLE;
	roundtrip(&in, &out);
	ck_assert_str_eq(out.u.ready.model, "b");
	ck_assert_uint_eq(out.u.ready.port, 8002);
	ck_assert_uint_eq(out.u.ready.generation, 5);
	proto_msg_free(&out);

	memset(&in, 0, sizeof(in));
	in.type = PROTO_FAILED;
	in.u.failed.model = "b";
	in.u.failed.reason = "wake timed out";
	roundtrip(&in, &out);
	ck_assert_str_eq(out.u.failed.reason, "wake timed out");
	proto_msg_free(&out);
}
END_TEST

START_TEST(test_roundtrip_calls)
{
	struct proto_msg	 in, out;
	char			*pol[] = { "offload+keep_running", "2", NULL };
	enum proto_type		 t;

	/* Every call type round-trips with the fields it requires. */
	for (t = PROTO_CTL_STATUS; t <= PROTO_CTL_SUBSCRIBE; t++) {
		memset(&in, 0, sizeof(in));
		in.type = t;
		in.id = 100 + (uint32_t)t;
		in.u.call.model = "m";
		in.u.call.mode = "manual";
		in.u.call.has_eviction = true;
		in.u.call.eviction = (struct eviction){ WEIGHTS_DISCARD,
		    PROCESS_CUDA_SUSPEND };
		in.u.call.policies.v = pol;
		in.u.call.policies.n = 2;
		in.u.call.no_warmup = true;
		in.u.call.follow = true;
		in.u.call.lines = 50;
		in.u.call.authorized = true;
		ck_assert(proto_type_is_call(t));
		roundtrip(&in, &out);
		ck_assert_str_eq(out.u.call.model, "m");
		ck_assert_str_eq(out.u.call.mode, "manual");
		ck_assert(out.u.call.has_eviction);
		ck_assert_int_eq(out.u.call.eviction.weights, WEIGHTS_DISCARD);
		ck_assert_int_eq(out.u.call.eviction.process,
		    PROCESS_CUDA_SUSPEND);
		ck_assert_uint_eq(out.u.call.policies.n, 2);
		ck_assert_str_eq(out.u.call.policies.v[1], "2");
		ck_assert(out.u.call.no_warmup);
		ck_assert(out.u.call.follow);
		ck_assert_uint_eq(out.u.call.lines, 50);
		ck_assert(out.u.call.authorized);
		proto_msg_free(&out);
	}
	ck_assert_int_eq(proto_call_by_name("switch"), PROTO_CTL_SWITCH);
	ck_assert_int_eq(proto_call_by_name("eviction_set"),
	    PROTO_CTL_EVICTION_SET);
	ck_assert_int_eq(proto_call_by_name("nope"), 0);
	ck_assert(!proto_type_is_call(PROTO_REPLY));

	/* Optional fields stay absent. */
	memset(&in, 0, sizeof(in));
	in.type = PROTO_CTL_STATUS;
	in.id = 1;
	roundtrip(&in, &out);
	ck_assert_ptr_null(out.u.call.model);
	ck_assert(!out.u.call.has_eviction);
	ck_assert_uint_eq(out.u.call.policies.n, 0);
	ck_assert(!out.u.call.authorized);
	proto_msg_free(&out);
}
END_TEST

/* Which calls each role may make (catalogue.c's table). */
START_TEST(test_call_access)
{
	static const enum proto_type read[] = { PROTO_CTL_STATUS,
	    PROTO_CTL_MODELS, PROTO_CTL_EVICTION_GET, PROTO_CTL_METRICS,
	    PROTO_CTL_SUBSCRIBE };
	static const enum proto_type change[] = { PROTO_CTL_MODE,
	    PROTO_CTL_PIN, PROTO_CTL_UNPIN, PROTO_CTL_SWITCH,
	    PROTO_CTL_EVICTION_SET, PROTO_CTL_SLEEP, PROTO_CTL_WAKE,
	    PROTO_CTL_CHECKPOINT, PROTO_CTL_RESTORE, PROTO_CTL_VALIDATE };
	static const enum proto_type priv[] = { PROTO_CTL_LOGS };
	static const enum proto_type admin[] = { PROTO_CTL_RELOAD };
	/* What the proxy says of its caller (authorized) and the call. */
	static const struct proto_call plain = { .authorized = false },
	    token = { .authorized = true },
	    follow = { .authorized = true, .follow = true };
	enum proto_type	t;
	size_t		i, n = 0;

	for (i = 0; i < sizeof(read) / sizeof(read[0]); i++, n++) {
		ck_assert_int_eq(proto_call_access(read[i]), PROTO_ACCESS_READ);
		ck_assert(proto_call_allowed(read[i], PROTO_ROLE_PROXY,
		    &plain));
		ck_assert(proto_call_allowed(read[i], PROTO_ROLE_PROXY, NULL));
		ck_assert(proto_call_allowed(read[i], PROTO_ROLE_ADMIN,
		    &plain));
		ck_assert(!proto_call_allowed(read[i], PROTO_ROLE_NONE,
		    &token));
	}
	for (i = 0; i < sizeof(change) / sizeof(change[0]); i++, n++) {
		ck_assert_int_eq(proto_call_access(change[i]),
		    PROTO_ACCESS_CHANGE);
		ck_assert(!proto_call_allowed(change[i], PROTO_ROLE_PROXY,
		    &plain));
		ck_assert(!proto_call_allowed(change[i], PROTO_ROLE_PROXY,
		    NULL));
		ck_assert(proto_call_allowed(change[i], PROTO_ROLE_PROXY,
		    &token));
		ck_assert(proto_call_allowed(change[i], PROTO_ROLE_ADMIN,
		    &plain));
	}
	/* A model's log: the proxy with the token, never a follow. */
	for (i = 0; i < sizeof(priv) / sizeof(priv[0]); i++, n++) {
		ck_assert_int_eq(proto_call_access(priv[i]),
		    PROTO_ACCESS_PRIVATE);
		ck_assert(!proto_call_allowed(priv[i], PROTO_ROLE_PROXY,
		    &plain));
		ck_assert(!proto_call_allowed(priv[i], PROTO_ROLE_PROXY,
		    NULL));
		ck_assert(proto_call_allowed(priv[i], PROTO_ROLE_PROXY,
		    &token));
		ck_assert(!proto_call_allowed(priv[i], PROTO_ROLE_PROXY,
		    &follow));
		ck_assert(proto_call_allowed(priv[i], PROTO_ROLE_ADMIN,
		    &plain));
		ck_assert(proto_call_allowed(priv[i], PROTO_ROLE_ADMIN,
		    &follow));
		ck_assert(!proto_call_allowed(priv[i], PROTO_ROLE_NONE,
		    &token));
	}
	for (i = 0; i < sizeof(admin) / sizeof(admin[0]); i++, n++) {
		ck_assert_int_eq(proto_call_access(admin[i]),
		    PROTO_ACCESS_ADMIN);
		ck_assert(!proto_call_allowed(admin[i], PROTO_ROLE_PROXY,
		    &token));
		ck_assert(proto_call_allowed(admin[i], PROTO_ROLE_ADMIN,
		    &plain));
	}
	/* Every call is in one of the lists above. */
	for (t = PROTO_CTL_STATUS; t <= PROTO_CTL_SUBSCRIBE; t++)
		ck_assert(proto_type_is_call(t));
	ck_assert_uint_eq(n, PROTO_CTL_SUBSCRIBE - PROTO_CTL_STATUS + 1);
	/* What is not a call is no one's to make. */
	ck_assert(!proto_call_allowed(PROTO_DEMAND, PROTO_ROLE_ADMIN, &token));
	ck_assert(!proto_call_allowed(PROTO_REPLY, PROTO_ROLE_PROXY, &token));
}
END_TEST

START_TEST(test_roundtrip_replies)
{
	struct proto_msg	 in, out;
	struct pk		 b;
	char			*json;
	uint8_t			 data[300];

	pk_init(&b);
	msgpack_pack_map(&b.pk, 3);
	pk_key(&b, "state");
	pk_key(&b, "active:a");
	pk_key(&b, "active_model");
	msgpack_pack_nil(&b.pk);
	pk_key(&b, "models");
	msgpack_pack_map(&b.pk, 1);
	pk_key(&b, "a");
	msgpack_pack_map(&b.pk, 2);
	pk_key(&b, "in_flight");
	msgpack_pack_uint32(&b.pk, 2);
	pk_key(&b, "ratio");
	msgpack_pack_double(&b.pk, 0.5);

	memset(&in, 0, sizeof(in));
	in.type = PROTO_REPLY;
	in.id = 5;
	in.u.reply.status = 200;
	in.u.reply.body = (uint8_t *)b.sb.data;
	in.u.reply.body_len = b.sb.size;
	roundtrip(&in, &out);
	ck_assert_uint_eq(out.u.reply.status, 200);
	ck_assert_uint_eq(out.u.reply.body_len, b.sb.size);
	ck_assert_mem_eq(out.u.reply.body, b.sb.data, b.sb.size);
	json = mpjson_string(out.u.reply.body, out.u.reply.body_len, 0);
	ck_assert_str_eq(json, "{\"state\":\"active:a\",\"active_model\":null,"
	    "\"models\":{\"a\":{\"in_flight\":2,\"ratio\":0.5}}}");
	free(json);
	{
		size_t		 left;
		const uint8_t	*v = mpjson_find(out.u.reply.body,
		    out.u.reply.body_len, "models.a.in_flight", &left);

		ck_assert_ptr_nonnull(v);
		ck_assert_uint_eq(v[0], 2);
		ck_assert_ptr_null(mpjson_find(out.u.reply.body,
		    out.u.reply.body_len, "models.b", &left));
	}
	proto_msg_free(&out);

	/* A body that is not a map is refused by the encoder. */
	in.u.reply.body = (uint8_t *)"\x01";
	in.u.reply.body_len = 1;
	{
		uint8_t	*frame;
		size_t	 len;

		ck_assert_int_eq(proto_encode(&in, &frame, &len), -1);
		ck_assert_ptr_null(frame);
	}
	msgpack_sbuffer_destroy(&b.sb);

	memset(&in, 0, sizeof(in));
	in.type = PROTO_PROGRESS;
	in.id = 5;
	in.u.progress.model = "a";
	in.u.progress.phase = "wake";
	in.u.progress.elapsed_ms = 1234;
	roundtrip(&in, &out);
	ck_assert_str_eq(out.u.progress.phase, "wake");
	ck_assert_uint_eq(out.u.progress.elapsed_ms, 1234);
	ck_assert_ptr_null(out.u.progress.detail);
	proto_msg_free(&out);

	memset(data, 0, sizeof(data));	/* NULs are fine in binary data */
	memset(&in, 0, sizeof(in));
	in.type = PROTO_LOG_DATA;
	in.id = 6;
	in.u.log.data = data;
	in.u.log.len = sizeof(data);
	roundtrip(&in, &out);
	ck_assert_uint_eq(out.u.log.len, sizeof(data));
	proto_msg_free(&out);
}
END_TEST

/* {"from": "a", "phases": {"drain": 12}, "model": "dup", "x": [1, null]} */
static void
event_data(struct pk *p)
{
	pk_init(p);
	msgpack_pack_map(&p->pk, 4);
	pk_key(p, "from");
	pk_key(p, "a");
	pk_key(p, "phases");
	msgpack_pack_map(&p->pk, 1);
	pk_key(p, "drain");
	msgpack_pack_uint32(&p->pk, 12);
	pk_key(p, "model");
	pk_key(p, "dup");
	pk_key(p, "x");
	msgpack_pack_array(&p->pk, 2);
	msgpack_pack_uint32(&p->pk, 1);
	msgpack_pack_nil(&p->pk);
}

START_TEST(test_event)
{
	struct proto_msg	 in, out;
	struct pk		 p;
	char			*json, *sse;
	size_t			 len;

	event_data(&p);
	memset(&in, 0, sizeof(in));
	in.type = PROTO_EVENT;
	in.u.event.seq = 42;
	in.u.event.boot = 1767225600123ull;
	in.u.event.time_ms = 1767225601005ull;
	in.u.event.kind = "switch";
	in.u.event.model = "b";
	in.u.event.data = (uint8_t *)p.sb.data;
	in.u.event.data_len = p.sb.size;
	roundtrip(&in, &out);
	ck_assert_uint_eq(out.u.event.seq, 42);
	ck_assert_uint_eq(out.u.event.boot, 1767225600123ull);
	ck_assert_str_eq(out.u.event.kind, "switch");
	ck_assert_str_eq(out.u.event.model, "b");
	ck_assert_uint_eq(out.u.event.data_len, p.sb.size);

	/* The JSON object: the event's own keys first, data's after them. */
	json = evstream_json(&out.u.event);
	ck_assert_str_eq(json, "{\"seq\":42,\"boot\":1767225600123,"
	    "\"time\":\"2026-01-01T00:00:01.005Z\",\"kind\":\"switch\","
	    "\"model\":\"b\",\"from\":\"a\",\"phases\":{\"drain\":12},"
	    "\"x\":[1,null]}");
	sse = evstream_sse(&out.u.event, &len);
	ck_assert_uint_eq(len, strlen(sse));
	ck_assert_ptr_nonnull(strstr(sse, "id: 1767225600123-42\nevent: switch"
	    "\ndata: {"));
	ck_assert_ptr_nonnull(strstr(sse, json));
	ck_assert_int_eq(strcmp(sse + len - 3, "}\n\n"), 0);
	free(json);
	free(sse);
	/* A kind that would break an SSE line is not made into one. */
	free(out.u.event.kind);
	out.u.event.kind = xstrdup("bad\nkind");
	ck_assert_ptr_null(evstream_sse(&out.u.event, &len));
	ck_assert(!evstream_kind_valid(""));
	ck_assert(!evstream_kind_valid("Switch"));
	ck_assert(evstream_kind_valid("gap"));
	proto_msg_free(&out);
	msgpack_sbuffer_destroy(&p.sb);

	/* No data: an event is still one object. */
	memset(&in, 0, sizeof(in));
	in.type = PROTO_EVENT;
	in.u.event.seq = 1;
	in.u.event.boot = 7;
	in.u.event.kind = "mode";
	roundtrip(&in, &out);
	ck_assert_ptr_null(out.u.event.data);
	json = evstream_json(&out.u.event);
	ck_assert_str_eq(json, "{\"seq\":1,\"boot\":7,\"time\":"
	    "\"1970-01-01T00:00:00.000Z\",\"kind\":\"mode\"}");
	free(json);
	proto_msg_free(&out);

	/* Data over PROTO_MAX_EVENT_DATA is refused both ways. */
	pk_init(&p);
	msgpack_pack_map(&p.pk, 1);
	pk_key(&p, "reason");
	{
		char	*big = xcalloc(1, PROTO_MAX_EVENT_DATA);

		memset(big, 'r', PROTO_MAX_EVENT_DATA - 1);
		msgpack_pack_str_with_body(&p.pk, big, PROTO_MAX_EVENT_DATA);
		free(big);
	}
	memset(&in, 0, sizeof(in));
	in.type = PROTO_EVENT;
	in.u.event.seq = 1;
	in.u.event.boot = 7;
	in.u.event.kind = "crash";
	in.u.event.data = (uint8_t *)p.sb.data;
	in.u.event.data_len = p.sb.size;
	{
		uint8_t	*frame;

		ck_assert_int_eq(proto_encode(&in, &frame, &len), -1);
	}
	msgpack_sbuffer_destroy(&p.sb);
}
END_TEST

/* A subscribe call up to its "since" key; the caller packs the value. */
static void
pk_subscribe(struct pk *p)
{
	pk_init(p);
	msgpack_pack_map(&p->pk, 3);
	pk_key(p, "t");
	msgpack_pack_uint32(&p->pk, PROTO_CTL_SUBSCRIBE);
	pk_key(p, "id");
	msgpack_pack_uint32(&p->pk, 1);
	pk_key(p, "since");
}

START_TEST(test_event_ids)
{
	struct proto_event_id	 id;
	struct proto_msg	 in, out;
	struct pk		 p;
	char			 buf[64], err[256];
	static const char	*bad[] = { "", "-", "1-", "-1", "0-5", "1-2-3",
				    " 1", "1 ", "+1", "1a", "1-a",
				    "18446744073709551616", "1-18446744073709551616" };

	ck_assert_int_eq(proto_event_id_parse("1767225600123-42", &id), 0);
	ck_assert_uint_eq(id.boot, 1767225600123ull);
	ck_assert_uint_eq(id.seq, 42);
	proto_event_id_format(&id, buf, sizeof(buf));
	ck_assert_str_eq(buf, "1767225600123-42");
	ck_assert_int_eq(proto_event_id_parse("0", &id), 0);
	ck_assert_uint_eq(id.boot, 0);
	ck_assert_uint_eq(id.seq, 0);
	ck_assert_int_eq(proto_event_id_parse("18446744073709551615", &id), 0);
	ck_assert_uint_eq(id.seq, UINT64_MAX);
	proto_event_id_format(&id, buf, sizeof(buf));
	ck_assert_str_eq(buf, "18446744073709551615");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(proto_event_id_parse(bad[i], &id) == -1,
		    "accepted '%s'", bad[i]);

	/* subscribe's since: BOOT-SEQ as a string, a bare seq as a number. */
	memset(&in, 0, sizeof(in));
	in.type = PROTO_CTL_SUBSCRIBE;
	in.id = 3;
	in.u.call.has_since = true;
	in.u.call.since.boot = 99;
	in.u.call.since.seq = 5;
	roundtrip(&in, &out);
	ck_assert(out.u.call.has_since);
	ck_assert_uint_eq(out.u.call.since.boot, 99);
	ck_assert_uint_eq(out.u.call.since.seq, 5);
	proto_msg_free(&out);
	in.u.call.since.boot = 0;
	in.u.call.since.seq = 0;
	roundtrip(&in, &out);
	ck_assert(out.u.call.has_since);
	ck_assert_uint_eq(out.u.call.since.seq, 0);
	proto_msg_free(&out);
	in.u.call.has_since = false;
	roundtrip(&in, &out);
	ck_assert(!out.u.call.has_since);
	proto_msg_free(&out);

	/* A string "SEQ" decodes too; anything else is refused clearly. */
	pk_subscribe(&p);
	pk_key(&p, "17");
	ck_assert_int_eq(proto_decode((uint8_t *)p.sb.data, p.sb.size, &out,
	    err, sizeof(err)), 0);
	ck_assert_uint_eq(out.u.call.since.seq, 17);
	proto_msg_free(&out);
	msgpack_sbuffer_destroy(&p.sb);
	pk_subscribe(&p);
	pk_key(&p, "7-x");
	ck_assert_int_eq(decode_raw(p.sb.data, p.sb.size, err, sizeof(err)),
	    -1);
	ck_assert_ptr_nonnull(strstr(err, "since"));
	msgpack_sbuffer_destroy(&p.sb);
	pk_subscribe(&p);
	msgpack_pack_int(&p.pk, -3);
	ck_assert_int_eq(decode_raw(p.sb.data, p.sb.size, err, sizeof(err)),
	    -1);
	msgpack_sbuffer_destroy(&p.sb);
}
END_TEST

START_TEST(test_encode_limits)
{
	struct proto_msg	 m;
	uint8_t			*frame;
	size_t			 len;
	char			 big[PROTO_MAX_NAME + 2];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memset(&m, 0, sizeof(m));
	m.type = PROTO_DEMAND;
	m.u.demand.model = big;
	ck_assert_int_eq(proto_encode(&m, &frame, &len), -1);
	/* A call without an id is not encoded. */
	memset(&m, 0, sizeof(m));
	m.type = PROTO_CTL_STATUS;
	ck_assert_int_eq(proto_encode(&m, &frame, &len), -1);
	m.type = (enum proto_type)999;
	m.id = 1;
	ck_assert_int_eq(proto_encode(&m, &frame, &len), -1);
}
END_TEST

START_TEST(test_frame_length)
{
	uint32_t	n;

	ck_assert_int_eq(proto_frame_length((const uint8_t *)"\0\0", 2, &n), 0);
	ck_assert_int_eq(proto_frame_length((const uint8_t *)"\0\0\0\0", 4,
	    &n), -1);
	ck_assert_int_eq(proto_frame_length((const uint8_t *)"\xff\xff\xff\xff",
	    4, &n), -1);
	ck_assert_int_eq(proto_frame_length((const uint8_t *)"\x00\x10\x00\x01",
	    4, &n), -1);
	ck_assert_int_eq(proto_frame_length((const uint8_t *)"\x00\x10\x00\x00",
	    4, &n), 1);
	ck_assert_uint_eq(n, PROTO_MAX_FRAME);
}
END_TEST

START_TEST(test_hostile_counts)
{
	char	err[256];
	/* {"t": 100, "models": array32 claiming 2^32-1 elements} */
	static const uint8_t arr[] = { 0x82, 0xa1, 't', 0x64,
	    0xa6, 'm', 'o', 'd', 'e', 'l', 's', 0xdd, 0xff, 0xff, 0xff, 0xff };
	/* A map32 header claiming 2^32-1 pairs in a 5-byte frame. */
	static const uint8_t map[] = { 0xdf, 0xff, 0xff, 0xff, 0xff };
	/* A str32 claiming 4 GiB. */
	static const uint8_t str[] = { 0x81, 0xa1, 't', 0xdb, 0xff, 0xff, 0xff,
	    0xff };

	xmalloc_largest(1);
	ck_assert_int_eq(decode_raw(arr, sizeof(arr), err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "count larger"));
	ck_assert_int_eq(decode_raw(map, sizeof(map), err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "count larger"));
	ck_assert_int_eq(decode_raw(str, sizeof(str), err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "past the end"));
	ck_assert_uint_le(xmalloc_largest(0), sizeof(arr));
}
END_TEST

START_TEST(test_hostile_nesting)
{
	struct pk	p;
	char		err[256];

	/* A reply whose body nests 40 maps deep. */
	pk_init(&p);
	msgpack_pack_map(&p.pk, 4);
	pk_key(&p, "t");
	msgpack_pack_uint32(&p.pk, PROTO_REPLY);
	pk_key(&p, "id");
	msgpack_pack_uint32(&p.pk, 1);
	pk_key(&p, "status");
	msgpack_pack_uint32(&p.pk, 200);
	pk_key(&p, "body");
	for (int i = 0; i < 40; i++) {
		msgpack_pack_map(&p.pk, 1);
		pk_key(&p, "k");
	}
	msgpack_pack_nil(&p.pk);
	ck_assert_int_eq(decode_raw(p.sb.data, p.sb.size, err, sizeof(err)),
	    -1);
	ck_assert_ptr_nonnull(strstr(err, "too deep"));
	msgpack_sbuffer_destroy(&p.sb);

	/* Deep nesting in an unknown key is refused as well. */
	pk_init(&p);
	msgpack_pack_map(&p.pk, 2);
	pk_key(&p, "t");
	msgpack_pack_uint32(&p.pk, PROTO_HELLO);
	pk_key(&p, "x");
	for (int i = 0; i < 40; i++)
		msgpack_pack_array(&p.pk, 1);
	msgpack_pack_nil(&p.pk);
	ck_assert_int_eq(decode_raw(p.sb.data, p.sb.size, err, sizeof(err)),
	    -1);
	ck_assert_ptr_nonnull(strstr(err, "too deep"));
	msgpack_sbuffer_destroy(&p.sb);
}
END_TEST

START_TEST(test_wrong_types)
{
	struct pk	p;
	char		err[256];

	/* "t" as a string. */
	pk_init(&p);
	msgpack_pack_map(&p.pk, 1);
	pk_key(&p, "t");
	pk_key(&p, "hello");
	ck_assert_int_eq(decode_raw(p.sb.data, p.sb.size, err, sizeof(err)),
	    -1);
	ck_assert_ptr_nonnull(strstr(err, "'t'"));
	msgpack_sbuffer_destroy(&p.sb);

	/* demand.model as an integer. */
	pk_init(&p);
	msgpack_pack_map(&p.pk, 2);
	pk_key(&p, "t");
	msgpack_pack_uint32(&p.pk, PROTO_DEMAND);
	pk_key(&p, "model");
	msgpack_pack_uint32(&p.pk, 5);
	ck_assert_int_eq(decode_raw(p.sb.data, p.sb.size, err, sizeof(err)),
	    -1);
	ck_assert_ptr_nonnull(strstr(err, "expected a string"));
	msgpack_sbuffer_destroy(&p.sb);

	/* A negative queue length. */
	pk_init(&p);
	msgpack_pack_map(&p.pk, 3);
	pk_key(&p, "t");
	msgpack_pack_uint32(&p.pk, PROTO_DEMAND);
	pk_key(&p, "model");
	pk_key(&p, "a");
	pk_key(&p, "queued");
	msgpack_pack_int(&p.pk, -1);
	ck_assert_int_eq(decode_raw(p.sb.data, p.sb.size, err, sizeof(err)),
	    -1);
	ck_assert_ptr_nonnull(strstr(err, "queued"));
	msgpack_sbuffer_destroy(&p.sb);

	/* A port out of range. */
	pk_init(&p);
	msgpack_pack_map(&p.pk, 3);
	pk_key(&p, "t");
	msgpack_pack_uint32(&p.pk, PROTO_READY);
	pk_key(&p, "model");
	pk_key(&p, "a");
	pk_key(&p, "port");
	msgpack_pack_uint32(&p.pk, 70000);
	ck_assert_int_eq(decode_raw(p.sb.data, p.sb.size, err, sizeof(err)),
	    -1);
	ck_assert_ptr_nonnull(strstr(err, "out of range"));
	msgpack_sbuffer_destroy(&p.sb);

	/* Not a map at all. */
	ck_assert_int_eq(decode_raw("\x93\x01\x02\x03", 4, err, sizeof(err)),
	    -1);
	ck_assert_ptr_nonnull(strstr(err, "must be a map"));
	/* The reserved byte. */
	ck_assert_int_eq(decode_raw("\xc1", 1, err, sizeof(err)), -1);
}
END_TEST

START_TEST(test_strictness)
{
	struct pk	p;
	char		err[256];

	/* A NUL byte inside a string. */
	pk_init(&p);
	msgpack_pack_map(&p.pk, 2);
	pk_key(&p, "t");
	msgpack_pack_uint32(&p.pk, PROTO_DEMAND);
	pk_key(&p, "model");
	msgpack_pack_str_with_body(&p.pk, "a\0b", 3);
	ck_assert_int_eq(decode_raw(p.sb.data, p.sb.size, err, sizeof(err)),
	    -1);
	ck_assert_ptr_nonnull(strstr(err, "NUL"));
	msgpack_sbuffer_destroy(&p.sb);

	/* An over-long model name. */
	pk_init(&p);
	msgpack_pack_map(&p.pk, 2);
	pk_key(&p, "t");
	msgpack_pack_uint32(&p.pk, PROTO_DEMAND);
	pk_key(&p, "model");
	{
		char	name[PROTO_MAX_NAME + 1];

		memset(name, 'n', sizeof(name));
		msgpack_pack_str_with_body(&p.pk, name, sizeof(name));
	}
	ck_assert_int_eq(decode_raw(p.sb.data, p.sb.size, err, sizeof(err)),
	    -1);
	ck_assert_ptr_nonnull(strstr(err, "over the limit"));
	msgpack_sbuffer_destroy(&p.sb);

	/* An unknown type. */
	pk_init(&p);
	msgpack_pack_map(&p.pk, 1);
	pk_key(&p, "t");
	msgpack_pack_uint32(&p.pk, 4242);
	ck_assert_int_eq(decode_raw(p.sb.data, p.sb.size, err, sizeof(err)),
	    -1);
	ck_assert_ptr_nonnull(strstr(err, "unknown message type 4242"));
	msgpack_sbuffer_destroy(&p.sb);

	/* A duplicate key. */
	pk_init(&p);
	msgpack_pack_map(&p.pk, 3);
	pk_key(&p, "t");
	msgpack_pack_uint32(&p.pk, PROTO_DEMAND);
	pk_key(&p, "model");
	pk_key(&p, "a");
	pk_key(&p, "model");
	pk_key(&p, "b");
	ck_assert_int_eq(decode_raw(p.sb.data, p.sb.size, err, sizeof(err)),
	    -1);
	ck_assert_ptr_nonnull(strstr(err, "twice"));
	msgpack_sbuffer_destroy(&p.sb);

	/* A required key missing; a call missing its model; no id. */
	pk_init(&p);
	msgpack_pack_map(&p.pk, 1);
	pk_key(&p, "t");
	msgpack_pack_uint32(&p.pk, PROTO_READY);
	ck_assert_int_eq(decode_raw(p.sb.data, p.sb.size, err, sizeof(err)),
	    -1);
	ck_assert_ptr_nonnull(strstr(err, "missing key 'model'"));
	msgpack_sbuffer_destroy(&p.sb);

	pk_init(&p);
	msgpack_pack_map(&p.pk, 2);
	pk_key(&p, "t");
	msgpack_pack_uint32(&p.pk, PROTO_CTL_SWITCH);
	pk_key(&p, "id");
	msgpack_pack_uint32(&p.pk, 3);
	ck_assert_int_eq(decode_raw(p.sb.data, p.sb.size, err, sizeof(err)),
	    -1);
	ck_assert_ptr_nonnull(strstr(err, "ctl_switch: missing key 'model'"));
	msgpack_sbuffer_destroy(&p.sb);

	pk_init(&p);
	msgpack_pack_map(&p.pk, 1);
	pk_key(&p, "t");
	msgpack_pack_uint32(&p.pk, PROTO_CTL_STATUS);
	ck_assert_int_eq(decode_raw(p.sb.data, p.sb.size, err, sizeof(err)),
	    -1);
	ck_assert_ptr_nonnull(strstr(err, "'id'"));
	msgpack_sbuffer_destroy(&p.sb);

	/* Unknown keys are ignored. */
	pk_init(&p);
	msgpack_pack_map(&p.pk, 4);
	pk_key(&p, "future");
	msgpack_pack_array(&p.pk, 2);
	msgpack_pack_true(&p.pk);
	msgpack_pack_double(&p.pk, 1.5);
	pk_key(&p, "t");
	msgpack_pack_uint32(&p.pk, PROTO_DEMAND);
	pk_key(&p, "model");
	pk_key(&p, "a");
	pk_key(&p, "queued");
	msgpack_pack_uint32(&p.pk, 4);
	ck_assert_int_eq(decode_raw(p.sb.data, p.sb.size, err, sizeof(err)),
	    0);
	msgpack_sbuffer_destroy(&p.sb);

	/* Trailing bytes after the map. */
	{
		static const uint8_t t[] = { 0x81, 0xa1, 't', 0x03, 0x00 };

		ck_assert_int_eq(decode_raw(t, sizeof(t), err, sizeof(err)),
		    -1);
		ck_assert_ptr_nonnull(strstr(err, "trailing"));
	}
	/* An unknown eviction. */
	pk_init(&p);
	msgpack_pack_map(&p.pk, 4);
	pk_key(&p, "t");
	msgpack_pack_uint32(&p.pk, PROTO_CTL_EVICTION_SET);
	pk_key(&p, "id");
	msgpack_pack_uint32(&p.pk, 1);
	pk_key(&p, "model");
	pk_key(&p, "a");
	pk_key(&p, "eviction");
	pk_key(&p, "melt+stop");
	ck_assert_int_eq(decode_raw(p.sb.data, p.sb.size, err, sizeof(err)),
	    -1);
	ck_assert_ptr_nonnull(strstr(err, "unknown eviction"));
	msgpack_sbuffer_destroy(&p.sb);
}
END_TEST

START_TEST(test_truncation_everywhere)
{
	struct proto_msg		 in;
	struct proto_model_status	 ms[1];
	uint8_t				*frame;
	size_t				 len;
	char				 err[256];

	memset(&in, 0, sizeof(in));
	memset(ms, 0, sizeof(ms));
	ms[0].name = "model-with-a-name";
	ms[0].state = PROTO_MS_SLEEPING;
	ms[0].reason = "asleep";
	in.type = PROTO_STATE;
	in.u.state.switcher = "switching:a->b";
	in.u.state.models = ms;
	in.u.state.n_models = 1;
	ck_assert_int_eq(proto_encode(&in, &frame, &len), 0);
	/* Every strict prefix of the payload is an error, never a crash. */
	for (size_t cut = 0; cut < len - 4; cut++) {
		uint8_t	*copy = xmalloc(cut == 0 ? 1 : cut);

		memcpy(copy, frame + 4, cut);
		ck_assert_int_eq(decode_raw(copy, cut, err, sizeof(err)), -1);
		free(copy);
	}
	ck_assert_int_eq(decode_raw(frame + 4, len - 4, err, sizeof(err)), 0);
	free(frame);
}
END_TEST

/* ---- the connection ---------------------------------------------------- */

struct conn_test {
	struct event_base	*base;
	int			 got;
	int			 errors;
	int			 closed;
	char			 last_error[256];
	char			 close_reason[256];
	uint32_t		 last_queued;
};

static void
on_msg(struct proto_conn *c, struct proto_msg *m, void *arg)
{
	struct conn_test	*t = arg;

	if (m->type == PROTO_ERROR) {
		t->errors++;
		snprintf(t->last_error, sizeof(t->last_error), "%s: %s",
		    m->u.error.code, m->u.error.message);
	} else if (m->type == PROTO_DEMAND) {
		t->got++;
		t->last_queued = m->u.demand.queued;
	}
	event_base_loopbreak(t->base);
}

static void
on_close(struct proto_conn *c, const char *reason, void *arg)
{
	struct conn_test	*t = arg;

	t->closed++;
	snprintf(t->close_reason, sizeof(t->close_reason), "%s", reason);
	event_base_loopbreak(t->base);
}

/* Run the loop until a callback breaks it (bounded by a timeout). */
static void
loop_once(struct event_base *base)
{
	struct timeval	tv = { 5, 0 };

	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

START_TEST(test_conn)
{
	struct conn_test	 a, b;
	struct proto_conn	*ca, *cb;
	struct proto_msg	 m;
	int			 sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	a.base = b.base = event_base_new();
	ca = proto_conn_new(a.base, sv[0], "a", on_msg, on_close, &a);
	cb = proto_conn_new(a.base, sv[1], "b", on_msg, on_close, &b);
	ck_assert_str_eq(proto_conn_name(cb), "b");

	memset(&m, 0, sizeof(m));
	m.type = PROTO_DEMAND;
	m.u.demand.model = "x";
	m.u.demand.queued = 42;
	ck_assert_int_eq(proto_conn_send(ca, &m), 0);
	loop_once(a.base);
	ck_assert_int_eq(b.got, 1);
	ck_assert_uint_eq(b.last_queued, 42);

	/* A bad message is answered with an ERROR; the connection lives. */
	{
		static const uint8_t bad[] = { 0, 0, 0, 3, 0x81, 0xa1, 't' };

		ck_assert_int_eq(write(proto_conn_fd(ca), bad, sizeof(bad)),
		    (ssize_t)sizeof(bad));
	}
	loop_once(a.base);
	ck_assert_int_eq(a.errors, 1);
	ck_assert_ptr_nonnull(strstr(a.last_error, "bad_message"));
	m.u.demand.queued = 43;
	ck_assert_int_eq(proto_conn_send(ca, &m), 0);
	loop_once(a.base);
	ck_assert_int_eq(b.got, 2);
	ck_assert_int_eq(b.closed, 0);

	/* A length prefix over the limit closes the connection. */
	ck_assert_int_eq(write(proto_conn_fd(ca), "\x7f\0\0\0", 4), 4);
	while (b.closed == 0 || a.closed == 0)
		loop_once(a.base);
	ck_assert_ptr_nonnull(strstr(b.close_reason, "bad frame length"));
	ck_assert_int_eq(a.errors, 2);
	ck_assert_ptr_nonnull(strstr(a.last_error, "bad_frame"));
	event_base_free(a.base);
}
END_TEST

START_TEST(test_conn_max_frame)
{
	struct conn_test	 a, b;
	struct proto_conn	*ca, *cb;
	struct proto_msg	 m;
	int			 sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	a.base = b.base = event_base_new();
	ca = proto_conn_new(a.base, sv[0], "a", on_msg, on_close, &a);
	cb = proto_conn_new(a.base, sv[1], "b", on_msg, on_close, &b);
	proto_conn_set_max_frame(cb, 64);

	/* Within the limit: delivered. */
	memset(&m, 0, sizeof(m));
	m.type = PROTO_DEMAND;
	m.u.demand.model = "x";
	m.u.demand.queued = 1;
	ck_assert_int_eq(proto_conn_send(ca, &m), 0);
	loop_once(a.base);
	ck_assert_int_eq(b.got, 1);

	/* A frame of 65 bytes, before its payload: refused, closed. */
	ck_assert_int_eq(write(proto_conn_fd(ca), "\0\0\0\x41", 4), 4);
	while (b.closed == 0 || a.closed == 0)
		loop_once(a.base);
	ck_assert_ptr_nonnull(strstr(b.close_reason, "bad frame length"));
	ck_assert_ptr_nonnull(strstr(a.last_error, "over 64 bytes"));
	event_base_free(a.base);
}
END_TEST

/* Frees its connection on the first message. */
static void
on_msg_free(struct proto_conn *c, struct proto_msg *m, void *arg)
{
	struct conn_test	*t = arg;

	t->got++;
	proto_conn_free(c);
	event_base_loopbreak(t->base);
}

START_TEST(test_conn_free_in_callback)
{
	struct conn_test	 b;
	struct proto_conn	*cb;
	struct proto_msg	 m;
	uint8_t			*frame;
	size_t			 len;
	int			 sv[2];

	/* Two frames in one read; the owner frees the conn on the first. */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	memset(&b, 0, sizeof(b));
	b.base = event_base_new();
	cb = proto_conn_new(b.base, sv[1], "b", on_msg_free, on_close, &b);
	ck_assert_ptr_nonnull(cb);
	memset(&m, 0, sizeof(m));
	m.type = PROTO_DEMAND;
	m.u.demand.model = "x";
	ck_assert_int_eq(proto_encode(&m, &frame, &len), 0);
	ck_assert_int_eq(write(sv[0], frame, len), (ssize_t)len);
	ck_assert_int_eq(write(sv[0], frame, len), (ssize_t)len);
	free(frame);
	loop_once(b.base);
	/* The second frame is not delivered to a freed connection. */
	ck_assert_int_eq(b.got, 1);
	ck_assert_int_eq(b.closed, 0);
	close(sv[0]);
	event_base_free(b.base);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("proto");
	TCase	*tc = tcase_create("codec");
	TCase	*tn = tcase_create("conn");

	tcase_add_test(tc, test_roundtrip_session);
	tcase_add_test(tc, test_roundtrip_config);
	tcase_add_test(tc, test_roundtrip_data_plane);
	tcase_add_test(tc, test_roundtrip_calls);
	tcase_add_test(tc, test_call_access);
	tcase_add_test(tc, test_roundtrip_replies);
	tcase_add_test(tc, test_event);
	tcase_add_test(tc, test_event_ids);
	tcase_add_test(tc, test_encode_limits);
	tcase_add_test(tc, test_frame_length);
	tcase_add_test(tc, test_hostile_counts);
	tcase_add_test(tc, test_hostile_nesting);
	tcase_add_test(tc, test_wrong_types);
	tcase_add_test(tc, test_strictness);
	tcase_add_test(tc, test_truncation_everywhere);
	tcase_add_test(tn, test_conn);
	tcase_add_test(tn, test_conn_max_frame);
	tcase_add_test(tn, test_conn_free_in_callback);
	suite_add_tcase(s, tc);
	suite_add_tcase(s, tn);
	return (unit_run(s));
}
