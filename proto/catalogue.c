/*
 * catalogue.c -- the table of fields of every message type of proto.h, and
 * the names of types, roles and states; and which calls each role may
 * make. The encoder, the decoder and proto_msg_free (codec.c) all walk
 * these tables, so a field cannot be sent in a form the other side
 * refuses.
 */
#include <stddef.h>
#include <string.h>

#include "catalogue.h"

#define FS(a) { (a), sizeof(a) / sizeof((a)[0]) }
#define STR(s, k, m, fl) { #k, FK_STR, offsetof(s, k), (m), (fl), NO_OFF, NULL, 0, 0 }
#define NUM(s, k, kind, m, fl) { #k, kind, offsetof(s, k), (m), (fl), NO_OFF, NULL, 0, 0 }
#define BOOL(s, k) { #k, FK_BOOL, offsetof(s, k), 1, 0, NO_OFF, NULL, 0, 0 }
#define LIST(s, k, m, im) { #k, FK_STRLIST, offsetof(s, k), (m), 0, NO_OFF, NULL, 0, (im) }

static const struct field hello_fields[] = {
	NUM(struct proto_hello, version, FK_U32, UINT32_MAX, FF_REQUIRED),
	NUM(struct proto_hello, role, FK_ENUM, PROTO_ROLE_ADMIN + 1, FF_REQUIRED),
	NUM(struct proto_hello, pid, FK_U32, UINT32_MAX, 0),
	STR(struct proto_hello, program, PROTO_MAX_NAME, 0),
	BOOL(struct proto_hello, unprivileged),
};

static const struct field error_fields[] = {
	STR(struct proto_error, code, PROTO_MAX_NAME, FF_REQUIRED),
	STR(struct proto_error, message, PROTO_MAX_TEXT, FF_REQUIRED),
};

static const struct field model_info_fields[] = {
	STR(struct proto_model_info, name, PROTO_MAX_NAME, FF_REQUIRED),
	NUM(struct proto_model_info, port, FK_U16, UINT16_MAX, FF_REQUIRED),
	LIST(struct proto_model_info, aliases, PROTO_MAX_ALIASES, PROTO_MAX_NAME),
	STR(struct proto_model_info, served, PROTO_MAX_NAME, 0),
	NUM(struct proto_model_info, max_concurrency, FK_U32, UINT32_MAX, 0),
};
static const struct fieldset model_info_set = FS(model_info_fields);

static const struct field config_fields[] = {
	NUM(struct proto_config, generation, FK_U64, UINT64_MAX, 0),
	{ "models", FK_ARRAY, offsetof(struct proto_config, models),
	  PROTO_MAX_MODELS, 0, offsetof(struct proto_config, n_models),
	  &model_info_set, sizeof(struct proto_model_info), 0 },
	NUM(struct proto_config, port, FK_U16, UINT16_MAX, 0),
	NUM(struct proto_config, admin_port, FK_U16, UINT16_MAX, 0),
	NUM(struct proto_config, metrics_port, FK_U16, UINT16_MAX, 0),
	STR(struct proto_config, listen_address, 256, 0),
	STR(struct proto_config, admin_address, 256, 0),
	NUM(struct proto_config, request_timeout_secs, FK_U32, UINT32_MAX, 0),
	NUM(struct proto_config, max_queue_per_model, FK_U32, UINT32_MAX, 0),
	NUM(struct proto_config, max_body_bytes, FK_U64, UINT64_MAX, 0),
	NUM(struct proto_config, max_header_bytes, FK_U32, UINT32_MAX, 0),
	NUM(struct proto_config, max_connections, FK_U32, UINT32_MAX, 0),
	NUM(struct proto_config, max_connections_per_ip, FK_U32, UINT32_MAX, 0),
	NUM(struct proto_config, max_buffered_body_mb, FK_U32, UINT32_MAX, 0),
	NUM(struct proto_config, header_timeout_ms, FK_U32, UINT32_MAX, 0),
	NUM(struct proto_config, body_timeout_ms, FK_U32, UINT32_MAX, 0),
	NUM(struct proto_config, keepalive_timeout_secs, FK_U32, UINT32_MAX, 0),
	NUM(struct proto_config, upstream_timeout_secs, FK_U32, UINT32_MAX, 0),
	STR(struct proto_config, ui_dir, 1024, 0),
	STR(struct proto_config, javascript_dir, 1024, 0),
	LIST(struct proto_config, api_keys, PROTO_MAX_KEYS, 256),
	STR(struct proto_config, admin_token, 256, 0),
	BOOL(struct proto_config, allow_unauthenticated),
};

static const struct field demand_fields[] = {
	STR(struct proto_demand, model, PROTO_MAX_NAME, FF_REQUIRED),
	NUM(struct proto_demand, queued, FK_U32, UINT32_MAX, 0),
	NUM(struct proto_demand, in_flight, FK_U32, UINT32_MAX, 0),
	NUM(struct proto_demand, oldest_ms, FK_U32, UINT32_MAX, 0),
	NUM(struct proto_demand, done, FK_U64, UINT64_MAX, 0),
};

static const struct field model_status_fields[] = {
	STR(struct proto_model_status, name, PROTO_MAX_NAME, FF_REQUIRED),
	NUM(struct proto_model_status, state, FK_ENUM, PROTO_MS__COUNT, FF_REQUIRED),
	NUM(struct proto_model_status, port, FK_U16, UINT16_MAX, 0),
	NUM(struct proto_model_status, generation, FK_U64, UINT64_MAX, 0),
	{ "eviction", FK_EVICTION, offsetof(struct proto_model_status, eviction),
	  0, 0, NO_OFF, NULL, 0, 0 },
	STR(struct proto_model_status, reason, PROTO_MAX_TEXT, 0),
};
static const struct fieldset model_status_set = FS(model_status_fields);

static const struct field state_fields[] = {
	BOOL(struct proto_state, manual),
	STR(struct proto_state, pinned, PROTO_MAX_NAME, 0),
	STR(struct proto_state, switcher, 2 * PROTO_MAX_NAME + 16, 0),
	{ "models", FK_ARRAY, offsetof(struct proto_state, models),
	  PROTO_MAX_MODELS, 0, offsetof(struct proto_state, n_models),
	  &model_status_set, sizeof(struct proto_model_status), 0 },
};

static const struct field drain_fields[] = {
	STR(struct proto_drain, model, PROTO_MAX_NAME, FF_REQUIRED),
	NUM(struct proto_drain, drain_id, FK_U32, UINT32_MAX, FF_REQUIRED),
};

static const struct field ready_fields[] = {
	STR(struct proto_ready, model, PROTO_MAX_NAME, FF_REQUIRED),
	NUM(struct proto_ready, port, FK_U16, UINT16_MAX, FF_REQUIRED),
	NUM(struct proto_ready, generation, FK_U64, UINT64_MAX, 0),
};

static const struct field failed_fields[] = {
	STR(struct proto_failed, model, PROTO_MAX_NAME, FF_REQUIRED),
	STR(struct proto_failed, reason, PROTO_MAX_TEXT, FF_REQUIRED),
};

static const struct field event_fields[] = {
	NUM(struct proto_event, seq, FK_U64, UINT64_MAX, FF_REQUIRED),
	NUM(struct proto_event, boot, FK_U64, UINT64_MAX, FF_REQUIRED),
	NUM(struct proto_event, time_ms, FK_U64, UINT64_MAX, FF_REQUIRED),
	STR(struct proto_event, kind, PROTO_MAX_NAME, FF_REQUIRED),
	STR(struct proto_event, model, PROTO_MAX_NAME, 0),
	{ "data", FK_BODY, offsetof(struct proto_event, data),
	  PROTO_MAX_EVENT_DATA, 0, offsetof(struct proto_event, data_len),
	  NULL, 0, 0 },
};

static const struct field call_fields[] = {
	STR(struct proto_call, model, PROTO_MAX_NAME, 0),
	STR(struct proto_call, mode, 16, 0),
	{ "eviction", FK_EVICTION, offsetof(struct proto_call, eviction),
	  0, 0, offsetof(struct proto_call, has_eviction), NULL, 0, 0 },
	LIST(struct proto_call, policies, PROTO_MAX_LIST, 64),
	BOOL(struct proto_call, no_warmup),
	BOOL(struct proto_call, follow),
	NUM(struct proto_call, lines, FK_U32, 1000000, 0),
	BOOL(struct proto_call, authorized),
	{ "since", FK_EVENT_ID, offsetof(struct proto_call, since), 0, 0,
	  offsetof(struct proto_call, has_since), NULL, 0, 0 },
};

static const struct field reply_fields[] = {
	NUM(struct proto_reply, status, FK_U16, 599, FF_REQUIRED),
	{ "body", FK_BODY, offsetof(struct proto_reply, body), PROTO_MAX_FRAME,
	  FF_REQUIRED, offsetof(struct proto_reply, body_len), NULL, 0, 0 },
};

static const struct field progress_fields[] = {
	STR(struct proto_progress, model, PROTO_MAX_NAME, 0),
	STR(struct proto_progress, phase, PROTO_MAX_NAME, FF_REQUIRED),
	NUM(struct proto_progress, elapsed_ms, FK_U64, UINT64_MAX, 0),
	STR(struct proto_progress, detail, PROTO_MAX_TEXT, 0),
};

static const struct field log_fields[] = {
	{ "data", FK_BIN, offsetof(struct proto_log_data, data),
	  PROTO_MAX_LOG_CHUNK, FF_REQUIRED, offsetof(struct proto_log_data, len),
	  NULL, 0, 0 },
};

static const struct field no_fields[1];

static const struct msgdef msgdefs[] = {
	{ PROTO_HELLO, "hello", FS(hello_fields), 0, -1, NULL },
	{ PROTO_ERROR, "error", FS(error_fields), 0, -1, NULL },
	{ PROTO_PING, "ping", { no_fields, 0 }, ID_REQUIRED, -1, NULL },
	{ PROTO_PONG, "pong", { no_fields, 0 }, ID_REQUIRED, -1, NULL },
	{ PROTO_CONFIG, "config", FS(config_fields), 0, -1, NULL },
	{ PROTO_DEMAND, "demand", FS(demand_fields), 0, -1, NULL },
	{ PROTO_STATE, "state", FS(state_fields), 0, -1, NULL },
	{ PROTO_DRAIN, "drain", FS(drain_fields), 0, -1, NULL },
	{ PROTO_DRAINED, "drained", FS(drain_fields), 0, -1, NULL },
	{ PROTO_READY, "ready", FS(ready_fields), 0, -1, NULL },
	{ PROTO_FAILED, "failed", FS(failed_fields), 0, -1, NULL },
	{ PROTO_EVENT, "event", FS(event_fields), 0, -1, NULL },
	{ PROTO_UNREACHABLE, "unreachable", FS(ready_fields), 0, -1, NULL },
	{ PROTO_CTL_STATUS, "ctl_status", FS(call_fields), ID_REQUIRED,
	  0, "status" },
	{ PROTO_CTL_MODELS, "ctl_models", FS(call_fields), ID_REQUIRED,
	  0, "models" },
	{ PROTO_CTL_MODE, "ctl_mode", FS(call_fields), ID_REQUIRED,
	  PROTO_F_MODE, "mode" },
	{ PROTO_CTL_PIN, "ctl_pin", FS(call_fields), ID_REQUIRED,
	  PROTO_F_MODEL, "pin" },
	{ PROTO_CTL_UNPIN, "ctl_unpin", FS(call_fields), ID_REQUIRED,
	  0, "unpin" },
	{ PROTO_CTL_SWITCH, "ctl_switch", FS(call_fields), ID_REQUIRED,
	  PROTO_F_MODEL, "switch" },
	{ PROTO_CTL_EVICTION_GET, "ctl_eviction_get", FS(call_fields),
	  ID_REQUIRED, 0, "eviction_get" },
	{ PROTO_CTL_EVICTION_SET, "ctl_eviction_set", FS(call_fields),
	  ID_REQUIRED, PROTO_F_MODEL | PROTO_F_EVICTION, "eviction_set" },
	{ PROTO_CTL_SLEEP, "ctl_sleep", FS(call_fields), ID_REQUIRED,
	  PROTO_F_MODEL | PROTO_F_EVICTION_OPT, "sleep" },
	{ PROTO_CTL_WAKE, "ctl_wake", FS(call_fields), ID_REQUIRED,
	  PROTO_F_MODEL, "wake" },
	{ PROTO_CTL_CHECKPOINT, "ctl_checkpoint", FS(call_fields), ID_REQUIRED,
	  PROTO_F_MODEL | PROTO_F_EVICTION_OPT | PROTO_F_NO_WARMUP_OPT,
	  "checkpoint" },
	{ PROTO_CTL_RESTORE, "ctl_restore", FS(call_fields), ID_REQUIRED,
	  PROTO_F_MODEL, "restore" },
	{ PROTO_CTL_VALIDATE, "ctl_validate", FS(call_fields), ID_REQUIRED,
	  PROTO_F_MODEL | PROTO_F_POLICIES_OPT, "validate" },
	{ PROTO_CTL_RELOAD, "ctl_reload", FS(call_fields), ID_REQUIRED,
	  0, "reload" },
	{ PROTO_CTL_LOGS, "ctl_logs", FS(call_fields), ID_REQUIRED,
	  PROTO_F_MODEL | PROTO_F_LOGS_OPT, "logs" },
	{ PROTO_CTL_METRICS, "ctl_metrics", FS(call_fields), ID_REQUIRED,
	  0, "metrics" },
	{ PROTO_CTL_SUBSCRIBE, "ctl_subscribe", FS(call_fields), ID_REQUIRED,
	  0, "subscribe" },
	{ PROTO_REPLY, "reply", FS(reply_fields), ID_REQUIRED, -1, NULL },
	{ PROTO_PROGRESS, "progress", FS(progress_fields), ID_REQUIRED,
	  -1, NULL },
	{ PROTO_LOG_DATA, "log_data", FS(log_fields), ID_REQUIRED, -1, NULL },
};

/*
 * Which calls each role may make: the one table the supervisor checks
 * every control call against, and the proxy reads to refuse at once what
 * it may not forward. A call that is not here is the admin role's alone.
 */
static const struct {
	enum proto_type		type;
	enum proto_access	access;
} call_access[] = {
	{ PROTO_CTL_STATUS, PROTO_ACCESS_READ },
	{ PROTO_CTL_MODELS, PROTO_ACCESS_READ },
	{ PROTO_CTL_EVICTION_GET, PROTO_ACCESS_READ },
	{ PROTO_CTL_METRICS, PROTO_ACCESS_READ },
	{ PROTO_CTL_SUBSCRIBE, PROTO_ACCESS_READ },
	{ PROTO_CTL_MODE, PROTO_ACCESS_CHANGE },
	{ PROTO_CTL_PIN, PROTO_ACCESS_CHANGE },
	{ PROTO_CTL_UNPIN, PROTO_ACCESS_CHANGE },
	{ PROTO_CTL_SWITCH, PROTO_ACCESS_CHANGE },
	{ PROTO_CTL_EVICTION_SET, PROTO_ACCESS_CHANGE },
	{ PROTO_CTL_SLEEP, PROTO_ACCESS_CHANGE },
	{ PROTO_CTL_WAKE, PROTO_ACCESS_CHANGE },
	{ PROTO_CTL_CHECKPOINT, PROTO_ACCESS_CHANGE },
	{ PROTO_CTL_RESTORE, PROTO_ACCESS_CHANGE },
	{ PROTO_CTL_VALIDATE, PROTO_ACCESS_CHANGE },
	{ PROTO_CTL_LOGS, PROTO_ACCESS_PRIVATE },
	{ PROTO_CTL_RELOAD, PROTO_ACCESS_ADMIN },
};

const struct msgdef *
proto_msgdef(uint64_t type)
{
	for (size_t i = 0; i < sizeof(msgdefs) / sizeof(msgdefs[0]); i++)
		if ((uint64_t)msgdefs[i].type == type)
			return (&msgdefs[i]);
	return (NULL);
}

const char *
proto_type_name(enum proto_type type)
{
	const struct msgdef	*d = proto_msgdef(type);

	return (d != NULL ? d->name : NULL);
}

bool
proto_type_is_call(enum proto_type type)
{
	return (proto_call_fields(type) >= 0);
}

int
proto_call_fields(enum proto_type type)
{
	const struct msgdef	*d = proto_msgdef(type);

	return (d != NULL ? d->call_fields : -1);
}

enum proto_type
proto_call_by_name(const char *name)
{
	for (size_t i = 0; i < sizeof(msgdefs) / sizeof(msgdefs[0]); i++)
		if (msgdefs[i].call_name != NULL &&
		    strcmp(msgdefs[i].call_name, name) == 0)
			return (msgdefs[i].type);
	return ((enum proto_type)0);
}

const char *
proto_role_name(enum proto_role role)
{
	switch (role) {
	case PROTO_ROLE_PROXY:
		return ("proxy");
	case PROTO_ROLE_ADMIN:
		return ("admin");
	default:
		return ("none");
	}
}

enum proto_access
proto_call_access(enum proto_type type)
{
	for (size_t i = 0; i < sizeof(call_access) / sizeof(call_access[0]);
	    i++)
		if (call_access[i].type == type)
			return (call_access[i].access);
	return (PROTO_ACCESS_ADMIN);
}

bool
proto_call_allowed(enum proto_type type, enum proto_role role,
    const struct proto_call *call)
{
	bool	authorized = call != NULL && call->authorized;

	if (!proto_type_is_call(type))
		return (false);
	if (role == PROTO_ROLE_ADMIN)
		return (true);
	if (role != PROTO_ROLE_PROXY)
		return (false);
	switch (proto_call_access(type)) {
	case PROTO_ACCESS_READ:
		return (true);
	case PROTO_ACCESS_CHANGE:
		return (authorized);
	case PROTO_ACCESS_PRIVATE:
		return (authorized && !call->follow);
	default:
		return (false);
	}
}

const char *
proto_model_state_name(enum proto_model_state s)
{
	static const char *names[] = {
		"stopped", "starting", "ready", "draining", "sleeping",
		"waking", "checkpointed", "failed", "evicting"
	};

	return ((unsigned)s < PROTO_MS__COUNT ? names[s] : "unknown");
}
