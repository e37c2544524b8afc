/** The string fields of PreferenceModelService's requests (preference_model.proto numbers), checked for UTF-8. */
import {
  conversationSchema,
  datasetRefSchema,
  jobRequestSchema,
  modelRefSchema,
  type WireSchema,
} from '@rlhf/service-kit';

export const preferenceUtf8Schemas: Record<string, WireSchema> = {
  compare: {
    1: { name: 'model', message: modelRefSchema },
    2: { name: 'prompt' },
    3: { name: 'response_a' },
    4: { name: 'response_b' },
    5: { name: 'conversation', message: conversationSchema },
  },
  rank: {
    1: { name: 'model', message: modelRefSchema },
    2: { name: 'prompt' },
    3: { name: 'responses', repeated: true },
    5: { name: 'conversation', message: conversationSchema },
  },
  trainPreferenceModel: {
    1: { name: 'job_id' },
    2: { name: 'base_model', message: modelRefSchema },
    3: { name: 'preferences', message: datasetRefSchema },
    4: { name: 'eval_dataset', message: datasetRefSchema },
    6: { name: 'output_uri' },
    7: { name: 'labels', map: true },
  },
  getPreferenceTrainingJob: jobRequestSchema,
  watchPreferenceTraining: jobRequestSchema,
  cancelPreferenceTrainingJob: jobRequestSchema,
};
