/**
 * Training-job events on NATS: each TrainingEvent of a JobManager published, protobuf-encoded, on
 * `rlhf.jobs.<service>.<job_id>`, for dashboards and controllers that follow jobs without a gRPC stream.
 * Core NATS, fire and forget: a lost event is never fatal, and GetTrainingJob always has the truth.
 */
import { jobEventSubject, type Logger, type NatsConnection } from '@rlhf/platform';
import { TrainingEvent } from '@rlhf/proto';

export function jobEventPublisher(
  nc: NatsConnection,
  service: string,
  logger: Logger,
): (event: TrainingEvent) => void {
  return (event) => {
    try {
      nc.publish(jobEventSubject(service, event.jobId), TrainingEvent.encode(event).finish());
    } catch (err) {
      logger.warn({ err, job: event.jobId }, 'could not publish a training-job event');
    }
  };
}
