// The MCP project's own TypeScript SDK client drives `ward mcp --embedded` over stdio: lists the
// tools, calls each one, and checks what a user of Claude Desktop or Claude Code would get back.
// The SDK validates every result against the tool's declared output schema.
//
//   NODE_PATH=build/npm-clients/node_modules node mcp_stdio.cjs WARD_BINARY
// (node >= 18; tools/test.sh installs the SDK there)
// Prints one line per check and exits 1 on the first failure.
'use strict';
const { Client } = require('@modelcontextprotocol/sdk/client/index.js');
const { StdioClientTransport } = require('@modelcontextprotocol/sdk/client/stdio.js');
const assert = require('node:assert/strict');

async function main() {

const ward = process.argv[2];
const transport = new StdioClientTransport({
  command: ward,
  args: ['mcp', '--embedded'],
  env: { ...process.env },
  stderr: 'inherit',
});
const client = new Client({ name: 'ward-stdio-test', version: '1.0.0' }, { capabilities: {} });
await client.connect(transport);

const check = (name, fn) => {
  try {
    fn();
    console.log(`ok ${name}`);
  } catch (e) {
    console.log(`FAIL ${name}: ${e.message}`);
    process.exitCode = 1;
  }
};
const text = (r) => r.content.filter((c) => c.type === 'text').map((c) => c.text).join('\n');
const call = (name, args) => client.callTool({ name, arguments: args });

check('server info', () => assert.equal(client.getServerVersion().name, 'ward'));
const { tools } = await client.listTools();
const names = tools.map((t) => t.name);
check('tools listed', () => {
  for (const t of ['bash_tool', 'str_replace', 'create_file', 'view', 'sub_agent', 'sandbox_info',
                   'upload_file', 'download_file'])
    assert.ok(names.includes(t), `${t} missing from ${names}`);
  assert.ok(!names.some((n) => n.startsWith('test_')), 'conformance fixtures served by default');
  for (const t of tools) assert.deepEqual(t.outputSchema.required, ['result']);
});

let r = await call('bash_tool', { command: 'echo hi from $(id -un 2>/dev/null || id -u)', description: 'greet' });
check('bash_tool runs in the sandbox', () => {
  assert.equal(r.isError, false);
  assert.match(text(r), /^hi from /);
  assert.equal(r.structuredContent.result, text(r));
});
r = await call('bash_tool', { command: 'cat /root/.ssh/id_rsa /etc/shadow', description: 'steal' });
check('bash_tool cannot read host secrets', () => {
  assert.equal(r.isError, true);
  assert.match(text(r), /\[Exit code: 1\]/);
});
r = await call('bash_tool', { command: 'true', description: 'nothing' });
check('bash_tool empty output', () => assert.equal(text(r), '[No output]'));

r = await call('create_file', { path: 'notes/todo.txt', file_text: 'alpha\nbeta\ngamma\n', description: 'c' });
check('create_file with a relative path', () => {
  assert.equal(r.isError, false);
  assert.match(text(r), /File created successfully at: \/.*\/notes\/todo\.txt/);
});
r = await call('str_replace', { path: 'notes/todo.txt', old_str: 'beta', new_str: 'BETA', description: 's' });
check('str_replace', () => assert.equal(r.isError, false));
r = await call('str_replace', { path: 'notes/todo.txt', old_str: 'missing', description: 's' });
check('str_replace not found is an error', () => {
  assert.equal(r.isError, true);
  assert.match(text(r), /not found/);
});
r = await call('view', { path: 'notes/todo.txt', description: 'v', view_range: [2, 3] });
check('view with a range', () => assert.equal(text(r), '     2\tBETA\n     3\tgamma\n'));
r = await call('view', { path: 'notes', description: 'v' });
check('view of a directory', () => assert.match(text(r), /notes\/todo\.txt/));

// A 1×1 PNG, uploaded, then viewed as an image and downloaded again.
const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==';
r = await call('upload_file', { path: 'img/dot.png', content_base64: png });
check('upload_file', () => assert.equal(r.isError, false, text(r)));
r = await call('view', { path: 'img/dot.png', description: 'v' });
check('view of an image', () => {
  const image = r.content.find((c) => c.type === 'image');
  assert.ok(image, 'no image content');
  assert.equal(image.mimeType, 'image/png');
  assert.equal(image.data, png);
  assert.equal(typeof r.structuredContent.result, 'string');
});
r = await call('download_file', { path: 'img/dot.png' });
check('download_file', () => {
  const res = r.content.find((c) => c.type === 'resource');
  assert.equal(res.resource.blob, png);
});
r = await call('download_file', { path: '/etc/passwd' });
check('download_file outside the workspace is refused', () => assert.equal(r.isError, true));

r = await call('sandbox_info', {});
check('sandbox_info', () => {
  assert.match(text(r), /Workspace/);
  assert.match(text(r), /Network: none/);
});
r = await call('sub_agent', { task: 'say hi', description: 'a' });
check('sub_agent without an agent CLI', () => {
  assert.equal(r.isError, true);
  assert.match(text(r), /no agent CLI/);
});
const { resources } = await client.listResources();
check('audit resource listed', () => assert.deepEqual(resources.map((x) => x.uri), ['ward://sandbox/audit']));
await call('bash_tool', { command: 'curl -s -m 5 http://stdio-audit-marker.example/ || true', description: 'n' });
const audit = await client.readResource({ uri: 'ward://sandbox/audit' });
check('audit resource shows the denied attempt', () =>
  assert.match(audit.contents[0].text, /stdio-audit-marker\.example/));

await client.close();
}

main().catch((e) => {
  console.log(`FAIL ${e.stack}`);
  process.exit(1);
});
