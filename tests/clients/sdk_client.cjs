// The official `openai` and `@anthropic-ai/sdk` npm clients, configured by nothing but what ward
// sets inside the sandbox (OPENAI_BASE_URL and OPENAI_API_KEY, ANTHROPIC_BASE_URL and
// ANTHROPIC_API_KEY, the proxy variables, NODE_USE_ENV_PROXY, NODE_EXTRA_CA_CERTS). Run with
// NODE_PATH naming the node_modules that holds them.
//
//   node sdk_client.cjs openai|anthropic PROMPT
//
// Prints one JSON object: per call what it returned, or {error, status} when it threw. openai:
// chat, stream, embeddings, models; anthropic: message, stream, models. `stream.times` are the
// arrival times of the chunks (events) in ms after the request was sent.
'use strict';

async function attempt(fn) {
  try {
    return await fn();
  } catch (e) {
    return {error: String(e && e.message ? e.message : e), status: e && e.status};
  }
}

// Iterates `stream`, timing each item from `start`; `take` sees each one.
async function timed(start, stream, take) {
  const times = [];
  for await (const item of stream) {
    times.push(Math.round(performance.now() - start));
    take(item);
  }
  return times;
}

async function listIds(page) {
  const ids = [];
  for await (const m of page) ids.push(m.id);
  return {ids};
}

async function openai(prompt) {
  const OpenAI = require('openai');
  const client = new OpenAI({maxRetries: 0});
  const request = {model: 'caller-model', messages: [{role: 'user', content: prompt}]};
  return {
    chat: await attempt(async () => {
      const r = await client.chat.completions.create(request);
      return {model: r.model, content: r.choices[0].message.content, usage: r.usage};
    }),
    stream: await attempt(async () => {
      const start = performance.now();
      const stream = await client.chat.completions.create(
          {...request, stream: true, stream_options: {include_usage: true}});
      let text = '', model = '', usage = null;
      const times = await timed(start, stream, (chunk) => {
        model = chunk.model;
        if (chunk.choices.length) text += chunk.choices[0].delta.content || '';
        if (chunk.usage) usage = chunk.usage;
      });
      return {model, text, usage, times};
    }),
    embeddings: await attempt(async () => {
      const r = await client.embeddings.create({model: 'caller-embedding', input: ['one', 'two']});
      return {model: r.model, count: r.data.length, dims: r.data[0].embedding.length};
    }),
    models: await attempt(() => listIds(client.models.list())),
  };
}

async function anthropic(prompt) {
  const Anthropic = require('@anthropic-ai/sdk');
  const client = new Anthropic({maxRetries: 0});
  const request =
      {model: 'caller-model', max_tokens: 64, messages: [{role: 'user', content: prompt}]};
  return {
    message: await attempt(async () => {
      const m = await client.messages.create(request);
      return {model: m.model, text: m.content[0].text, usage: m.usage};
    }),
    stream: await attempt(async () => {
      const start = performance.now();
      const stream = client.messages.stream(request);
      let text = '';
      const times = await timed(start, stream, (event) => {
        if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') {
          text += event.delta.text;
        }
      });
      const final = await stream.finalMessage();
      return {model: final.model, text, usage: final.usage, times};
    }),
    models: await attempt(() => listIds(client.models.list())),
  };
}

async function main() {
  const [sdk, prompt = 'hello'] = process.argv.slice(2);
  const run = {openai, anthropic}[sdk];
  if (!run) {
    console.error('usage: node sdk_client.cjs openai|anthropic PROMPT');
    process.exit(2);
  }
  console.log(JSON.stringify(await run(prompt)));
}

main();
