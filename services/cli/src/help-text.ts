/**
 * Help text as flowing paragraphs. Command descriptions are written as lines of source-code width; commander
 * wraps each line to the terminal on its own, which left half-empty lines in a narrow terminal or a pipe (80
 * columns). `reflow` joins each line to the one before it unless either is blank or the line is indented (a
 * list item or an example), so commander wraps whole paragraphs instead.
 */
import { Help } from 'commander';

export function reflow(text: string): string {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const prev = out[out.length - 1];
    const joins = prev !== undefined && prev.trim() !== '' && !/^\s/.test(prev) && /^\S/.test(line);
    if (joins) out[out.length - 1] = `${prev} ${line}`;
    else out.push(line);
  }
  return out.join('\n');
}

/**
 * Help settings for the program (subcommands inherit them): descriptions reflowed, then wrapped; an indented
 * line ("  term  what it is") wraps under its text, not at the margin.
 */
export const reflowingHelp: Partial<Help> = {
  boxWrap(this: Help, str: string, width: number): string {
    const wrap = (text: string, w: number): string => Help.prototype.boxWrap.call(this, text, w);
    return reflow(str)
      .split('\n')
      .map((line) => {
        const hang = /^\s+\S+\s{2,}/.exec(line)?.[0].length ?? /^\s*/.exec(line)?.[0].length ?? 0;
        if (hang === 0 || line.length <= width || width - hang < 20) return wrap(line, width);
        const [first = '', ...rest] = wrap(line.slice(hang), width - hang).split('\n');
        return [line.slice(0, hang) + first, ...rest.map((l) => ' '.repeat(hang) + l)].join('\n');
      })
      .join('\n');
  },
};
