// app.js -- llmux's web page: the models from GET /control/status, kept
// live by the event stream (GET /control/events), the last hour from
// GET /control/history drawn with Chart.js, a model's log from
// GET /control/logs, and the buttons that switch, sleep, wake and pin
// (POST /control/..., with the admin token the page keeps in
// sessionStorage). Nothing is loaded from anywhere but this port.
'use strict';

const TOKEN_KEY = 'llmux.admin_token';
const HISTORY_EVERY_MS = 5000;
const MAX_EVENTS = 100;
const COLORS = ['#0969da', '#cf222e', '#1a7f37', '#9a6700', '#8250df',
	'#bf3989', '#1b7c83', '#953800'];

const view = {
	status: null,		// the last GET /control/status
	models: {},		// name -> its status entry, updated by events
	switching: null,	// the switch under way, from the events
	charts: {},
	history: null,
};

const $ = (id) => document.getElementById(id);

function token() {
	return sessionStorage.getItem(TOKEN_KEY) || '';
}

function notice(text, kind) {
	const n = $('notice');
	n.textContent = text;
	n.className = kind || '';
	n.hidden = !text;
}

function el(tag, attrs, ...kids) {
	const e = document.createElement(tag);
	for (const [k, v] of Object.entries(attrs || {})) {
		if (k === 'class')
			e.className = v;
		else if (k.startsWith('data-'))
			e.setAttribute(k, v);
		else
			e[k] = v;
	}
	for (const k of kids)
		e.append(k);
	return e;
}

function bytes(n) {
	if (n == null)
		return '–';
	if (n >= 1 << 30)
		return (n / (1 << 30)).toFixed(1) + ' GiB';
	if (n >= 1 << 20)
		return (n / (1 << 20)).toFixed(0) + ' MiB';
	return n + ' B';
}

function ago(ms) {
	if (ms == null)
		return '–';
	if (ms < 1000)
		return 'now';
	if (ms < 60000)
		return Math.round(ms / 1000) + ' s ago';
	if (ms < 3600000)
		return Math.round(ms / 60000) + ' min ago';
	return Math.round(ms / 3600000) + ' h ago';
}

function clock(ms) {
	return new Date(ms).toLocaleTimeString([], { hour: '2-digit',
		minute: '2-digit', second: '2-digit', hour12: false });
}

function evictionText(e) {
	if (e == null)
		return '–';
	if (typeof e === 'string')
		return e;
	return (e.weights || '?') + '+' + (e.process || '?');
}

// ---- the control API ---------------------------------------------------

async function getJSON(path) {
	const r = await fetch(path, { cache: 'no-store' });
	if (!r.ok)
		throw new Error(path + ': ' + r.status);
	return r.json();
}

// A state-changing call: its answer, or the refusal shown plainly.
async function control(path, body, what) {
	const headers = { 'Content-Type': 'application/json' };
	if (token())
		headers.Authorization = 'Bearer ' + token();
	notice(what + '…');
	let r;
	try {
		r = await fetch(path, { method: 'POST', headers,
			body: JSON.stringify(body || {}) });
	} catch (e) {
		notice(what + ' failed: ' + e.message, 'refused');
		return;
	}
	let answer = null;
	try {
		answer = await r.json();
	} catch (e) {
		answer = null;
	}
	const msg = answer && (typeof answer.error === 'string' ?
		answer.error : answer.error && answer.error.message ||
		answer.message) || '';
	if (r.status === 401 || r.status === 403) {
		notice('Refused (' + r.status + '): ' + what + ' needs the admin ' +
			'token' + (token() ? ', and the one given is not it' :
			': enter it above') + '. ' + msg, 'refused');
		return;
	}
	if (!r.ok) {
		notice(what + ' failed (' + r.status + '): ' + msg, 'refused');
		return;
	}
	notice(what + ': ' + (msg || 'done'), 'done');
	refreshStatus();
}

// ---- models ----------------------------------------------------------------

function applyStatus(st) {
	view.status = st;
	view.models = {};
	for (const [name, m] of Object.entries(st.models || {}))
		view.models[name] = Object.assign({ name }, m);
	renderHeader();
	renderModels();
	renderLogModels();
}

async function refreshStatus() {
	try {
		applyStatus(await getJSON('/control/status'));
	} catch (e) {
		$('state').textContent = 'status unavailable';
	}
}

let refreshTimer = null;

// Events that change more than they say: read the status again, soon.
function refreshSoon() {
	if (refreshTimer == null)
		refreshTimer = setTimeout(() => {
			refreshTimer = null;
			refreshStatus();
		}, 100);
}

function renderHeader() {
	const st = view.status;

	if (st == null)
		return;
	$('state').textContent = st.state;
	const mode = st.mode || {};
	$('mode').textContent = mode.mode === 'manual' ?
		'manual, pinned ' + (mode.pinned || '–') : 'auto';
}

function card(m) {
	const pinned = view.status && view.status.mode &&
		view.status.mode.pinned === m.name;
	const button = (label, path, body) => el('button', {
		type: 'button', textContent: label, 'data-action': label,
		onclick: () => control(path, body, label + ' ' + m.name) });
	const rows = [
		['process', m.process_state],
		['eviction', evictionText(m.eviction)],
		['GPU memory', bytes(m.gpu_memory_bytes)],
		['queued', m.queue_depth],
		['in flight', m.in_flight],
		['requests/s', m.requests_per_s != null ?
			Number(m.requests_per_s).toFixed(2) : '–'],
		['last used', ago(m.last_used_ms_ago)],
		['idle TTL', m.ttl_remaining_s != null ?
			m.ttl_remaining_s + ' s' : '–'],
	];
	const dl = el('dl');
	for (const [k, v] of rows)
		dl.append(el('dt', { textContent: k }),
			el('dd', { textContent: v == null ? '–' : String(v) }));
	const c = el('article', { class: 'card', 'data-model': m.name,
		'data-state': m.state || 'stopped' },
	el('h3', {}, el('span', { textContent: m.name }),
		el('span', { class: 'state', textContent: m.state || '?' })),
	dl,
	el('div', { class: 'actions' },
		button('Switch', '/control/switch', { model: m.name }),
		button('Sleep', '/control/sleep', { model: m.name }),
		button('Wake', '/control/wake', { model: m.name }),
		pinned ? button('Unpin', '/control/unpin', {}) :
			button('Pin', '/control/pin', { model: m.name })));
	if (m.last_error)
		c.append(el('p', { class: 'error', textContent: m.last_error }));
	return c;
}

function renderModels() {
	const box = $('models');
	const names = Object.keys(view.models).sort();

	box.replaceChildren(...names.map((n) => card(view.models[n])));
}

function renderSwitching() {
	const s = view.switching;
	const box = $('switching');

	if (s == null) {
		box.hidden = true;
		return;
	}
	box.hidden = false;
	box.textContent = 'Switching ' + (s.from || 'idle') + ' → ' + s.to +
		': ' + s.phase + ', ' + ((Date.now() - s.since) / 1000).toFixed(1) +
		' s';
}

function renderLogModels() {
	const sel = $('log-model');
	const had = sel.value;
	const names = Object.keys(view.models).sort();

	if ([...sel.options].map((o) => o.value).join() === names.join())
		return;
	sel.replaceChildren(...names.map((n) => el('option',
		{ value: n, textContent: n })));
	if (names.includes(had))
		sel.value = had;
}

// ---- the event stream ----------------------------------------------------

function logEvent(ev) {
	const list = $('events');
	const fields = Object.entries(ev).filter(([k]) =>
		!['seq', 'boot', 'time', 'kind', 'model'].includes(k))
		.map(([k, v]) => k + '=' + (typeof v === 'object' ?
			JSON.stringify(v) : v)).join(' ');
	list.prepend(el('li', { textContent: (ev.time || '').slice(11, 23) +
		' ' + ev.kind + (ev.model ? ' ' + ev.model : '') + ' ' + fields }));
	while (list.children.length > MAX_EVENTS)
		list.lastChild.remove();
}

function onEvent(ev) {
	const m = ev.model ? view.models[ev.model] : null;

	logEvent(ev);
	switch (ev.kind) {
	case 'state':
		if (m) {
			m.state = ev.state;
			if (ev.eviction)
				m.eviction = ev.eviction;
			renderModels();
		} else
			refreshSoon();
		break;
	case 'queue':
		if (m) {
			m.queue_depth = ev.queued;
			m.in_flight = ev.in_flight;
			renderModels();
		}
		break;
	case 'switch':
		if (ev.phase === 'done' || ev.phase === 'failed') {
			view.switching = null;
			refreshSoon();
			refreshHistory();
		} else
			view.switching = { from: ev.from, to: ev.to,
				phase: ev.phase, since: Date.now() -
				(ev.elapsed_ms || 0) };
		if (view.status) {
			view.status.state = ev.phase === 'done' ? 'active:' +
				ev.to : ev.phase === 'failed' ? view.status.state :
				'switching:' + (ev.from || '') + '->' + ev.to;
			renderHeader();
		}
		renderSwitching();
		break;
	case 'gpu': {	// the telemetry moved: the cards now, the chart as usual
		let moved = false;
		for (const [name, g] of Object.entries(ev.models || {})) {
			const mm = view.models[name];
			if (!mm)
				continue;
			moved = moved || mm.gpu_memory_bytes !== g.gpu_memory_bytes;
			mm.gpu_memory_bytes = g.gpu_memory_bytes;
			if (Array.isArray(g.gpus))
				mm.gpus = g.gpus;
		}
		if (moved)
			renderModels();
		refreshHistory();
		break;
	}
	case 'mode':
		if (view.status) {
			view.status.mode = { mode: ev.mode, pinned: ev.pinned };
			renderHeader();
			renderModels();
		}
		break;
	default:	// crash, restart, eviction, reload, gap
		refreshSoon();
	}
}

function connectEvents() {
	const es = new EventSource('/control/events');
	const kinds = ['state', 'switch', 'queue', 'crash', 'restart',
		'eviction', 'mode', 'reload', 'gpu', 'gap'];

	for (const k of kinds)
		es.addEventListener(k, (e) => {
			try {
				onEvent(JSON.parse(e.data));
			} catch (err) {
				console.warn('bad event', err);
			}
		});
	es.onopen = () => {
		$('live').textContent = 'live';
		$('live').className = 'pill on';
		refreshStatus();
	};
	es.onerror = () => {
		$('live').textContent = 'reconnecting';
		$('live').className = 'pill off';
	};
}

// ---- charts ----------------------------------------------------------------

function lineChart(id, yTitle, type) {
	return new Chart($(id), {
		type: type || 'line',
		data: { datasets: [] },
		options: {
			animation: false,
			maintainAspectRatio: false,
			parsing: false,
			normalized: true,
			elements: { point: { radius: 2 }, line: { borderWidth: 2 } },
			scales: {
				x: { type: 'linear', ticks: { maxTicksLimit: 7,
					maxRotation: 0, callback: (v) => clock(v) } },
				y: { beginAtZero: true, title: { display: !!yTitle,
					text: yTitle } },
			},
			plugins: { legend: { position: 'bottom' },
				tooltip: { callbacks: { title: (items) =>
					items.length ? clock(items[0].parsed.x) : '' } } },
		},
	});
}

function makeCharts() {
	if (typeof Chart === 'undefined') {
		$('chart-none').hidden = false;
		return;
	}
	view.charts.requests = lineChart('chart-requests', 'req/s');
	view.charts.queue = lineChart('chart-queue', 'waiting');
	view.charts.gpu = lineChart('chart-gpu', 'GiB');
	view.charts.switches = lineChart('chart-switches', 's', 'scatter');
	view.charts.switches.options.elements.point.radius = 4;
}

// A model keeps its colour in every chart (a GPU takes its number's).
function colorOf(key) {
	const names = Object.keys(view.models).sort();
	const i = typeof key === 'number' ? key : names.indexOf(key);

	return COLORS[(i < 0 ? names.length : i) % COLORS.length];
}

// Every chart shows the same span: the history kept, at least 5 minutes.
const MIN_SPAN_MS = 5 * 60 * 1000;

function setData(chart, datasets, span) {
	if (!chart)
		return;
	chart.data.datasets = datasets.map((d) => Object.assign({
		borderColor: colorOf(d.key),
		backgroundColor: colorOf(d.key),
	}, d));
	chart.options.scales.x.min = span.min;
	chart.options.scales.x.max = span.max;
	chart.update();
}

function drawHistory(h) {
	const b = h.buckets || [];
	const span = { max: h.now_ms };
	span.min = Math.min(b.length ? b[0].t : h.now_ms, h.now_ms - MIN_SPAN_MS);
	const per = (key, scale) => h.models.map((name, i) => ({
		label: name, key: name,
		data: b.map((x) => ({ x: x.t, y: scale(x[key][i], x) })),
	}));
	setData(view.charts.requests, per('requests',
		(v, x) => v / Math.max(x.span_ms, 1000) * 1000), span);
	setData(view.charts.queue, per('queue', (v) => v), span);
	const gpus = new Map();
	for (const x of b)
		for (const g of x.gpus || []) {
			if (!gpus.has(g.index))
				gpus.set(g.index, []);
			gpus.get(g.index).push({ x: x.t, y: g.used_bytes / (1 << 30) });
		}
	$('gpu-none').hidden = gpus.size > 0;
	setData(view.charts.gpu, [...gpus.entries()].sort((a, c) => a[0] - c[0])
		.map(([i, data]) => ({ label: 'GPU ' + i, key: i, data })), span);
	const targets = new Map();
	for (const s of h.switches || []) {
		if (!targets.has(s.to))
			targets.set(s.to, []);
		targets.get(s.to).push({ x: s.t, y: s.ms / 1000 });
	}
	setData(view.charts.switches, [...targets.entries()].sort()
		.map(([to, data]) => ({ label: '→ ' + to, key: to, data })), span);
}

async function refreshHistory() {
	try {
		view.history = await getJSON('/control/history');
		drawHistory(view.history);
	} catch (e) {
		console.warn('history', e);
	}
}

// ---- the log, the token ------------------------------------------------------

async function showLog(ev) {
	ev.preventDefault();
	const model = $('log-model').value;
	const out = $('log-text');
	const headers = token() ? { Authorization: 'Bearer ' + token() } : {};

	if (!model)
		return;
	out.textContent = 'loading…';
	const r = await fetch('/control/logs?model=' + encodeURIComponent(model) +
		'&lines=200', { headers, cache: 'no-store' });
	if (r.status === 401) {
		out.textContent = 'Refused: a model\'s log needs the admin token.';
		return;
	}
	const text = await r.text();
	out.textContent = r.ok ? text || '(empty)' : 'Failed (' + r.status +
		'): ' + text;
	out.scrollTop = out.scrollHeight;
}

function showTokenState() {
	$('token-state').textContent = token() ? 'token set' : 'no token';
}

function init() {
	$('token-form').addEventListener('submit', (e) => {
		e.preventDefault();
		const t = $('token').value.trim();
		if (t)
			sessionStorage.setItem(TOKEN_KEY, t);
		$('token').value = '';
		showTokenState();
		notice('');
	});
	$('token-forget').addEventListener('click', () => {
		sessionStorage.removeItem(TOKEN_KEY);
		showTokenState();
	});
	$('log-form').addEventListener('submit', showLog);
	showTokenState();
	makeCharts();
	connectEvents();
	refreshStatus();
	refreshHistory();
	setInterval(refreshHistory, HISTORY_EVERY_MS);
	setInterval(() => {
		renderSwitching();
	}, 1000);
}

init();
