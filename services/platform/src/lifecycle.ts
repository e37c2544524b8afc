/**
 * Process lifecycle: the first SIGTERM or SIGINT starts an orderly stop (drain servers, ack or nak work,
 * close NATS); a second one exits at once, for an operator who will not wait.
 */
import type { Logger } from './observability/logger.js';

export function onStopSignal(logger: Logger, stop: (signal: string) => Promise<void>): () => void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn({ signal }, 'second stop signal; exiting now');
      process.exit(130);
    }
    stopping = true;
    logger.info({ signal }, 'stop signal; draining');
    stop(signal).then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  return () => {
    process.off('SIGTERM', handler);
    process.off('SIGINT', handler);
  };
}
