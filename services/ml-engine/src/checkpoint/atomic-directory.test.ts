import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeDirectoryAtomically } from './atomic-directory.js';

describe('writeDirectoryAtomically', () => {
  let root = '';
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'atomic-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const writeModel = (text: string) => async (dir: string) => {
    await writeFile(join(dir, 'config.json'), text);
    await mkdir(join(dir, 'onnx'));
    await writeFile(join(dir, 'onnx', 'model.onnx'), text);
    return text.length;
  };
  const leftovers = async (parent: string) =>
    (await readdir(parent)).filter((f) => f.includes('.tmp-') || f.includes('.old-'));

  it('publishes the filled directory under the final name and leaves nothing else', async () => {
    const out = join(root, 'a', 'deep', 'model');
    assert.equal(await writeDirectoryAtomically(out, writeModel('v1')), 2);
    assert.equal(await readFile(join(out, 'onnx', 'model.onnx'), 'utf8'), 'v1');
    assert.deepEqual(await leftovers(join(root, 'a', 'deep')), []);
  });

  it('removes the temporary directory when filling fails, leaving no output', async () => {
    const out = join(root, 'failed');
    await assert.rejects(
      writeDirectoryAtomically(out, async (dir) => {
        await writeFile(join(dir, 'half.bin'), 'x');
        throw new Error('disk on fire');
      }),
      /disk on fire/,
    );
    assert.deepEqual(
      (await readdir(root)).filter((f) => f.startsWith('failed')),
      [],
    );
  });

  it('refuses to overwrite a non-empty directory unless asked, without calling fill', async () => {
    const out = join(root, 'keep');
    await writeDirectoryAtomically(out, writeModel('old'));
    let called = false;
    await assert.rejects(
      writeDirectoryAtomically(out, async () => {
        called = true;
      }),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, 'ALREADY_EXISTS');
        assert.match(e.message, /refusing to overwrite .*keep/);
        return true;
      },
    );
    assert.equal(called, false);
    assert.equal(await readFile(join(out, 'config.json'), 'utf8'), 'old');
  });

  it('fills an existing empty directory', async () => {
    const out = join(root, 'empty');
    await mkdir(out);
    await writeDirectoryAtomically(out, writeModel('fresh'));
    assert.equal(await readFile(join(out, 'config.json'), 'utf8'), 'fresh');
  });

  it('replaces an existing directory wholesale with overwrite: true', async () => {
    const out = join(root, 'replace');
    await writeDirectoryAtomically(out, async (dir) => {
      await writeFile(join(dir, 'stale.txt'), 'old');
    });
    await writeDirectoryAtomically(out, writeModel('new'), { overwrite: true });
    assert.deepEqual((await readdir(out)).sort(), ['config.json', 'onnx']);
    assert.deepEqual(await leftovers(root), []);
  });

  it('keeps the old directory when the replacement fails', async () => {
    const out = join(root, 'survive');
    await writeDirectoryAtomically(out, writeModel('old'));
    await assert.rejects(
      writeDirectoryAtomically(
        out,
        async () => {
          throw new Error('boom');
        },
        { overwrite: true },
      ),
      /boom/,
    );
    assert.equal(await readFile(join(out, 'config.json'), 'utf8'), 'old');
    assert.deepEqual(await leftovers(root), []);
  });
});
