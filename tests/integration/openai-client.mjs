// openai-client.mjs -- the `openai` npm client against llmux-proxyd: list
// models, a chat completion, a streaming chat completion, an unknown model
// and a wrong API key (the error object's code, type and param as the client
// shows them), a stream whose backend dies, and embeddings (as the client
// asks for them, base64, and as floats). Prints one JSON line of what it saw.
//
//     node openai-client.mjs BASE_URL API_KEY
import OpenAI from 'openai';

const [, , baseURL, apiKey] = process.argv;
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 30000 });
const out = {};
const messages = [{ role: 'user', content: 'hello' }];

const models = await client.models.list();
out.models = models.data.map((m) => m.id).sort();

const chat = await client.chat.completions.create({ model: 'a', messages, max_tokens: 8,
	temperature: 0 });
out.chat = chat.choices[0].message.content;

const stream = await client.chat.completions.create({ model: 'a', messages, max_tokens: 8,
	temperature: 0, stream: true });
let text = '';
for await (const chunk of stream)
	text += chunk.choices[0]?.delta?.content ?? '';
out.stream = text;

try {
	await client.chat.completions.create({ model: 'nope', messages });
	out.unknown = 'no error';
} catch (e) {
	out.unknown = { status: e.status, code: e.code ?? e.error?.code, type: e.type,
		param: e.param, name: e.constructor.name };
}

try {
	const wrong = new OpenAI({ baseURL, apiKey: 'sk-wrong', maxRetries: 0, timeout: 30000 });
	await wrong.models.list();
	out.wrong_key = 'no error';
} catch (e) {
	out.wrong_key = { status: e.status, code: e.code, type: e.type, param: e.param,
		name: e.constructor.name };
}

try {
	const dying = await client.chat.completions.create({
		model: 'c', messages, max_tokens: 50, stream: true });
	let got = '';
	for await (const chunk of dying)
		got += chunk.choices[0]?.delta?.content ?? '';
	out.dying = { completed: got };
} catch (e) {
	out.dying = { error: String(e.message), type: e.type ?? e.error?.type ?? null };
}

// The client asks for base64 unless told otherwise, and decodes it.
const emb = await client.embeddings.create({ model: 'e', input: ['hello', 'world'] });
const floats = await client.embeddings.create({ model: 'e', input: 'hello',
	encoding_format: 'float' });
const v = Array.from(emb.data[0].embedding);
out.embeddings = {
	n: emb.data.length,
	dim: v.length,
	norm: Math.sqrt(v.reduce((s, x) => s + x * x, 0)),
	same: v.every((x, i) => Math.abs(x - floats.data[0].embedding[i]) < 1e-6),
	differ: v.some((x, i) => x !== Array.from(emb.data[1].embedding)[i]),
	usage: emb.usage.prompt_tokens,
	model: emb.model,
};

console.log(JSON.stringify(out));
