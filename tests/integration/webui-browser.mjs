// webui-browser.mjs -- Debian's chromium, driven by puppeteer-core, against
// llmux's web page on the admin port (tests/integration/test_webui.py):
// it loads with no console error and no request leaving the machine, shows
// the models, reflects a switch that a chat request causes (waiting for the
// DOM with a deadline) and then the GPU memory it moved, draws the charts,
// shows the refusal of a switch without the admin token, switches and
// reads a log with it, and takes a screenshot. Prints one JSON line of
// what it saw.
//
//     node webui-browser.mjs CHROMIUM ADMIN_URL PROXY_URL TOKEN SCREENSHOT DEADLINE_MS A B C
//
// A is active at the start; a chat request switches to B; the buttons
// switch to C.
import puppeteer from 'puppeteer-core';

const [, , chromium, adminURL, proxyURL, token, screenshot, deadlineArg, A, B, C] =
	process.argv;
const deadline = Number(deadlineArg);
const card = (m) => `.card[data-model="${m}"]`;
const out = { console: [], offsite: [], steps: [] };
let phase = 'load';

function step(name) {
	phase = name;
	out.steps.push(name);
}

async function chat(model) {
	const r = await fetch(proxyURL + '/v1/chat/completions', {
		method: 'POST',
		headers: { 'Content-Type': 'application/json' },
		body: JSON.stringify({ model, max_tokens: 4, temperature: 0,
			messages: [{ role: 'user', content: 'hello' }] }),
	});
	await r.json();
	return r.status;
}

// What a card says in its row `name` ("GPU memory": "23.4 GiB").
async function cardRow(page, model, name) {
	return page.$eval(card(model), (c, n) => {
		const dt = [...c.querySelectorAll('dt')].find((d) => d.textContent === n);
		return dt ? dt.nextElementSibling.textContent : null;
	}, name).catch(() => null);
}

// Wait until the cards show the memory of `awake` in GiB and of each of
// `asleep` in MiB (a context only): the supervisor's gpu events bring it,
// after the switch, without a status read.
async function gpuShown(page, awake, asleep) {
	await page.waitForFunction((w, s) => {
		const mem = (m) => {
			const c = document.querySelector(`.card[data-model="${m}"]`);
			const dt = c && [...c.querySelectorAll('dt')]
				.find((d) => d.textContent === 'GPU memory');
			return dt ? dt.nextElementSibling.textContent : '';
		};
		return / GiB$/.test(mem(w)) && s.every((m) => / MiB$/.test(mem(m)));
	}, { timeout: 30000, polling: 'mutation' }, awake, asleep);
	const out = {};
	for (const m of [awake, ...asleep])
		out[m] = await cardRow(page, m, 'GPU memory');
	return out;
}

// Click a button of a card. Every event redraws the cards, so the button
// found may be gone by the time it is clicked ("detached"), or replaced
// between the press and the release (no click at all): click again until
// the page shows it took the click (the notice it sets at once names
// `what`, as does the answer's), or the deadline.
async function clickCard(page, sel, what) {
	const end = Date.now() + Math.max(deadline, 5000);
	for (;;) {
		try {
			await page.click(sel);
			await page.waitForFunction((w) => document.getElementById('notice')
				.textContent.includes(w), { timeout: 1000 }, what);
			return;
		} catch (e) {
			if (!/detached|waiting failed/i.test(String(e)) || Date.now() > end)
				throw e;
		}
	}
}

const browser = await puppeteer.launch({
	executablePath: chromium,
	headless: true,
	args: ['--no-sandbox', '--disable-gpu', '--no-first-run',
		'--disable-background-networking', '--disable-component-update',
		'--disable-default-apps', '--disable-sync', '--metrics-recording-only',
		'--no-default-browser-check', '--disable-dev-shm-usage'],
});
try {
	const page = await browser.newPage();
	await page.setViewport({ width: 1180, height: 900 });
	// Every request the page makes must stay on this machine.
	await page.setRequestInterception(true);
	page.on('request', (req) => {
		const u = new URL(req.url());
		if (u.protocol === 'data:' || ['127.0.0.1', 'localhost', '[::1]']
			.includes(u.hostname)) {
			req.continue();
			return;
		}
		out.offsite.push(req.url());
		req.abort();
	});
	page.on('console', (m) => {
		if (m.type() === 'error')
			out.console.push({ phase, text: m.text() });
	});
	page.on('pageerror', (e) => out.console.push({ phase, text: String(e) }));

	step('load');
	await page.goto(adminURL + '/', { waitUntil: 'load', timeout: 30000 });
	await page.waitForFunction(() => document.querySelectorAll('.card').length >= 3 &&
		document.getElementById('live').textContent === 'live', { timeout: 15000 });
	out.models = await page.$$eval('.card', (cs) => cs.map((c) => c.dataset.model));
	out.csp = (await page.evaluate(async () =>
		(await fetch('/')).headers.get('content-security-policy')));

	// A chat request for b switches to it: the card follows from the events.
	step('switch');
	out.before = await page.$eval(card(B), (c) => c.dataset.state);
	out.chat_status = await chat(B);
	const t0 = Date.now();
	await page.waitForFunction((sel) => {
		const c = document.querySelector(sel);
		return c && c.dataset.state === 'ready';
	}, { timeout: deadline, polling: 'mutation' }, card(B));
	out.switch_seen_ms = Date.now() - t0;
	out.a_after = await page.$eval(card(A), (c) => c.dataset.state);
	out.header = await page.$eval('#state', (e) => e.textContent);

	// The GPU memory follows: B holds its weights, A asleep a context.
	step('gpu');
	out.gpu_after_switch = await gpuShown(page, B, [A]);

	// The charts: data in the Chart instances, pixels on the canvases.
	step('charts');
	await page.waitForFunction(() => {
		const has = (id) => {
			const ch = window.Chart && Chart.getChart(id);
			return ch && ch.data.datasets.some((d) => d.data.some((p) => p.y > 0));
		};
		return has('chart-requests') && has('chart-switches');
	}, { timeout: 30000 });
	out.pixels = await page.evaluate(() => {
		const c = document.getElementById('chart-requests');
		const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
		let n = 0;
		for (let i = 3; i < d.length; i += 4)
			if (d[i] !== 0)
				n++;
		return n;
	});
	out.series = await page.evaluate(() => Chart.getChart('chart-requests')
		.data.datasets.map((d) => d.label));

	// Without the token: the switch is refused, and the page says so.
	step('refusal');
	await clickCard(page, card(C) + ' button[data-action="Switch"]', 'Switch ' + C);
	await page.waitForFunction(() => /Refused \(401\)/.test(
		document.getElementById('notice').textContent), { timeout: 15000 });
	out.refusal = await page.$eval('#notice', (e) => e.textContent);
	out.c_after_refusal = await page.$eval(card(C), (c) => c.dataset.state);

	// With it: the switch is made, and a log can be read.
	step('token');
	await page.type('#token', token);
	await page.click('#token-form button[type="submit"]');
	await clickCard(page, card(C) + ' button[data-action="Switch"]', 'Switch ' + C);
	await page.waitForFunction((sel) => {
		const c = document.querySelector(sel);
		return c && c.dataset.state === 'ready';
	}, { timeout: 30000 }, card(C));
	await page.waitForFunction(() => document.getElementById('notice').className === 'done',
		{ timeout: 30000 });
	out.switched = await page.$eval('#notice', (e) => e.textContent);
	await page.select('#log-model', C);
	await page.click('#log-form button');
	await page.waitForFunction(() => !/^loading/.test(
		document.getElementById('log-text').textContent), { timeout: 15000 });
	out.log = (await page.$eval('#log-text', (e) => e.textContent)).slice(0, 2000);
	out.gpu_after_token = await gpuShown(page, C, [A, B]);

	step('screenshot');
	// The header, the cards and the charts: what README.md shows.
	const bottom = await page.evaluate(() => {
		window.scrollTo(0, 0);
		return document.querySelector('.charts').getBoundingClientRect().bottom;
	});
	await page.screenshot({ path: screenshot, type: 'png',
		clip: { x: 0, y: 0, width: 1180, height: Math.ceil(bottom) + 12 } });
} catch (e) {
	out.error = String(e && e.stack || e);
} finally {
	await browser.close();
}
console.log(JSON.stringify(out));
