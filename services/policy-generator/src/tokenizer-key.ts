/**
 * A tokenizer.json as a key that two files of one tokenizer share, for the evaluate stage's check that
 * the baseline reads the policy's token ids as the policy wrote them. tokenizers writes a BPE's merges as
 * "left right" strings up to 0.19 and as ["left", "right"] pairs from 0.20 on (what transformers'
 * save_pretrained writes now, so a policy trained by TRL and imported has pairs); the platform writes
 * strings. Both forms read as the same merges, so the key spells every merge as a pair.
 */
export function tokenizerKey(tokenizerJson: unknown): string {
  const doc = tokenizerJson as { model?: { merges?: unknown } } | null;
  const merges = doc?.model?.merges;
  if (!Array.isArray(merges)) return JSON.stringify(tokenizerJson);
  const pairs = merges.map((m) => {
    if (typeof m !== 'string') return m;
    // The string form cannot hold a token with a space, so the one space separates the two sides.
    const at = m.indexOf(' ');
    return at < 0 ? m : [m.slice(0, at), m.slice(at + 1)];
  });
  return JSON.stringify({ ...doc, model: { ...doc?.model, merges: pairs } });
}
