/**
 * The engine's tokenizer: any Hugging Face `tokenizer.json` whose model is BPE (ours, GPT-2, Llama-3 and
 * the like), encoded and decoded by `@huggingface/tokenizers`, HF's own dependency-free JS port of
 * `tokenizers`. This file adds what the engine needs on top: the special-token ids, vocabulary bounds
 * checks with useful errors, and exact round trips (no clean-up of spaces before punctuation on decode).
 */
import { Tokenizer as HfTokenizerClass } from '@huggingface/tokenizers';
import { EngineError, invalidInput } from '../engine-error.js';

/**
 * The part of the library we use. Its bundled `.d.ts` files import each other without extensions, which
 * NodeNext resolution cannot follow, so the class arrives untyped; this states the contract we rely on.
 */
interface HfTokenizer {
  encode(
    text: string,
    options: { add_special_tokens: boolean },
  ): { ids: (number | undefined)[]; tokens: string[] };
  decode(
    ids: number[],
    options: { skip_special_tokens: boolean; clean_up_tokenization_spaces: boolean },
  ): string;
  token_to_id(token: string): number | undefined;
}
const HfTokenizerCtor = HfTokenizerClass as new (json: object, config: object) => HfTokenizer;

export interface EncodeTextOptions {
  /**
   * Add the tokenizer's own special tokens, as Hugging Face's `tokenizer(text)` does (default false): those
   * of tokenizer.json's `post_processor` (Llama 2, Llama 3 and Mistral put BOS first). A tokenizer without
   * one (Qwen2, GPT-2) adds nothing. As in transformers 5, `add_bos_token` / `add_eos_token` in
   * tokenizer_config.json do not change it: the files transformers 4 saved carry their effect in the
   * post-processor already.
   */
  addSpecialTokens?: boolean;
  /** Prepend `bosId` (default false); INVALID_ARGUMENT when the tokenizer has no BOS. */
  addBos?: boolean;
  /** Append `eosId` (default false). */
  addEos?: boolean;
}

export interface DecodeIdsOptions {
  /** Drop special tokens (bos, eos, pad, ...) from the text (default false). */
  skipSpecialTokens?: boolean;
}

export interface Tokenizer {
  /** One more than the largest id, i.e. the number of embedding rows a model needs. */
  readonly vocabSize: number;
  /** The BOS token, when the tokenizer has one (Qwen2's and GPT-2-style vocabularies may not). */
  readonly bosId: number | undefined;
  readonly eosId: number;
  readonly padId: number;
  /**
   * Token ids of `text`. Special tokens written in the text (`<|eos|>`) become their ids, as in HF. By
   * default nothing is added, so a prompt and a completion encoded separately join without a BOS in the
   * middle; `addSpecialTokens` applies the tokenizer's own rule (see `prompt-ids.ts` for where it is used).
   */
  encode(text: string, options?: EncodeTextOptions): number[];
  /** Text of `ids`; throws for an id outside the vocabulary. */
  decode(ids: readonly number[], options?: DecodeIdsOptions): string;
  /** The id of a vocabulary string (`Ġthe`, `<|eos|>`), or undefined. */
  tokenToId(token: string): number | undefined;
  /** The vocabulary string of `id`; throws for an id outside the vocabulary. */
  idToToken(id: number): string;
  isSpecial(id: number): boolean;
}

/**
 * Which tokens play bos/eos/pad, when the file alone cannot say (it usually cannot). `null` says the
 * tokenizer has no such token (tokenizer_config.json's `"bos_token": null`, as Qwen2 writes it).
 */
export interface SpecialTokenNames {
  bos?: string | null;
  eos?: string;
  pad?: string | null;
}

export interface TokenizerSourceOptions {
  specials?: SpecialTokenNames;
  /** Where the document came from, for error messages. */
  source?: string;
}

/** Names used by common tokenizers, tried in order when no name is given. */
const KNOWN_NAMES: Record<keyof SpecialTokenNames, readonly string[]> = {
  bos: ['<|bos|>', '<|begin_of_text|>', '<s>', '<bos>', '<|endoftext|>'],
  eos: ['<|eos|>', '<|end_of_text|>', '<|endoftext|>', '</s>', '<eos>'],
  pad: ['<|pad|>', '<pad>', '[PAD]'],
};

interface ParsedJson {
  vocab: Record<string, number>;
  added: { id: number; content: string; special: boolean }[];
}

function parse(json: unknown, source: string): ParsedJson {
  const bad = (what: string, fix: string) =>
    invalidInput(`${source} is not a usable tokenizer.json: ${what}`, source, fix);
  if (typeof json !== 'object' || json === null)
    throw bad('not a JSON object', 'pass a parsed tokenizer.json');
  const doc = json as { model?: { type?: unknown; vocab?: unknown }; added_tokens?: unknown };
  const model = doc.model;
  if (typeof model !== 'object' || model === null)
    throw bad('no "model" section', 'write the file with HF tokenizers');
  if (model.type !== 'BPE' && !(model.type === undefined && 'merges' in model)) {
    throw bad(
      `model type ${JSON.stringify(model.type)} is not supported`,
      'use a BPE tokenizer (byte-level or byte-fallback)',
    );
  }
  const vocab = model.vocab;
  if (typeof vocab !== 'object' || vocab === null || Array.isArray(vocab)) {
    throw bad('"model.vocab" is not an object of token -> id', 'write the file with HF tokenizers');
  }
  for (const [token, id] of Object.entries(vocab)) {
    if (!Number.isInteger(id) || (id as number) < 0)
      throw bad(`vocab id of ${JSON.stringify(token)} is ${id}`, 'ids are integers >= 0');
  }
  const addedRaw = doc.added_tokens ?? [];
  if (!Array.isArray(addedRaw))
    throw bad('"added_tokens" is not an array', 'write the file with HF tokenizers');
  const added = addedRaw.map((t: { id?: unknown; content?: unknown; special?: unknown }, i) => {
    if (!Number.isInteger(t?.id) || typeof t?.content !== 'string') {
      throw bad(
        `added_tokens[${i}] needs an integer "id" and a string "content"`,
        'write the file with HF tokenizers',
      );
    }
    return { id: t.id as number, content: t.content, special: t.special === true };
  });
  return { vocab: vocab as Record<string, number>, added };
}

class HfBpeTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosId: number;
  readonly padId: number;
  private readonly idToString: (string | undefined)[];
  private readonly specialIds: ReadonlySet<number>;

  constructor(
    private readonly hf: HfTokenizer,
    parsed: ParsedJson,
    specials: SpecialTokenNames,
    private readonly source: string,
  ) {
    this.idToString = [];
    for (const [token, id] of Object.entries(parsed.vocab)) this.idToString[id] = token;
    for (const t of parsed.added) this.idToString[t.id] = t.content;
    this.vocabSize = this.idToString.length;
    this.specialIds = new Set(parsed.added.filter((t) => t.special).map((t) => t.id));

    const resolve = (role: keyof SpecialTokenNames): number | undefined => {
      const named = specials[role];
      if (named === null) return undefined;
      if (named !== undefined) {
        const id = this.tokenToId(named);
        if (id === undefined) {
          throw invalidInput(
            `${role} token ${JSON.stringify(named)} is not in ${source}`,
            `specials.${role}`,
          );
        }
        return id;
      }
      for (const name of KNOWN_NAMES[role]) {
        const id = this.tokenToId(name);
        if (id !== undefined) return id;
      }
      return undefined;
    };
    const eos = resolve('eos');
    if (eos === undefined) {
      throw invalidInput(
        `cannot tell the end-of-sequence token of ${source}`,
        'specials.eos',
        'name it in tokenizer_config.json ("eos_token") or pass specials: { eos: "..." }',
      );
    }
    this.eosId = eos;
    // No BOS stays no BOS: nothing is ever prepended that the tokenizer's own rule does not add. GPT-2's
    // <|endoftext|> is found as its BOS by name, as its tokenizer_config.json says. HF pads with EOS when
    // there is no pad token.
    this.bosId = resolve('bos');
    this.padId = resolve('pad') ?? eos;
  }

  encode(text: string, options: EncodeTextOptions = {}): number[] {
    if (typeof text !== 'string') throw invalidInput(`encode expects a string, got ${typeof text}`, 'text');
    const encoding = this.hf.encode(text, { add_special_tokens: options.addSpecialTokens === true });
    const ids: number[] = [];
    if (options.addBos) {
      if (this.bosId === undefined)
        throw invalidInput(`${this.source} has no BOS token to add`, 'add_bos', 'leave out --add-bos');
      ids.push(this.bosId);
    }
    encoding.ids.forEach((id, i) => {
      if (id === undefined || id === null) {
        throw new EngineError(
          'INVALID_ARGUMENT',
          `${this.source} has no token for ${JSON.stringify(encoding.tokens[i])} and no unk_token`,
          { field: 'text', fix: 'use a byte-level or byte-fallback tokenizer, which can spell any text' },
        );
      }
      ids.push(id);
    });
    if (options.addEos) ids.push(this.eosId);
    return ids;
  }

  decode(ids: readonly number[], options: DecodeIdsOptions = {}): string {
    for (const id of ids) this.checkId(id);
    if (ids.length === 0) return '';
    return this.hf.decode([...ids], {
      skip_special_tokens: options.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: false,
    });
  }

  tokenToId(token: string): number | undefined {
    return this.hf.token_to_id(token);
  }

  idToToken(id: number): string {
    this.checkId(id);
    return this.idToString[id]!;
  }

  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize || this.idToString[id] === undefined) {
      throw invalidInput(
        `token id ${id} is outside the vocabulary of ${this.source} (vocab size ${this.vocabSize})`,
        'ids',
        `ids must be integers in [0, ${this.vocabSize}) that the vocabulary defines`,
      );
    }
  }
}

/** A tokenizer from a parsed `tokenizer.json` document. */
export function tokenizerFromJson(json: unknown, options: TokenizerSourceOptions = {}): Tokenizer {
  const source = options.source ?? 'tokenizer.json';
  const parsed = parse(json, source);
  const specials = options.specials ?? {};
  // The JS port requires `added_tokens`, which HF's own loader treats as optional.
  const doc = {
    ...(json as object),
    added_tokens: (json as { added_tokens?: unknown }).added_tokens ?? [],
  };
  let hf: HfTokenizer;
  try {
    hf = new HfTokenizerCtor(doc, { clean_up_tokenization_spaces: false });
  } catch (cause) {
    throw new EngineError('INVALID_ARGUMENT', `${source} could not be loaded: ${(cause as Error).message}`, {
      field: source,
      cause,
    });
  }
  return new HfBpeTokenizer(hf, parsed, specials, source);
}
