/** The string fields of DpoTrainerService's requests (dpo_trainer.proto numbers), checked for UTF-8. */
import { datasetRefSchema, jobRequestSchema, modelRefSchema, type WireSchema } from '@rlhf/service-kit';

export const trainerUtf8Schemas: Record<string, WireSchema> = {
  startTraining: {
    1: { name: 'job_id' },
    3: { name: 'policy', message: modelRefSchema },
    4: { name: 'reference', message: modelRefSchema },
    5: { name: 'dataset', message: datasetRefSchema },
    6: { name: 'eval_dataset', message: datasetRefSchema },
    9: { name: 'output_uri' },
    10: { name: 'labels', map: true },
  },
  watchTraining: jobRequestSchema,
  getTrainingJob: jobRequestSchema,
  cancelTrainingJob: jobRequestSchema,
};
