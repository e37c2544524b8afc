/**
 * The logging surface the controller runtime needs: pino's `logger.warn(obj, msg)` shape, so a pino
 * Logger (what @rlhf/platform's createLogger returns) fits, and tests can pass a recorder.
 */
export interface RuntimeLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export const silentLogger: RuntimeLogger = {
  info() {},
  warn() {},
};
