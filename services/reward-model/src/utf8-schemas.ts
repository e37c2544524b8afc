/** The string fields of RewardModelService's requests (reward_model.proto numbers), checked for UTF-8. */
import {
  conversationSchema,
  datasetRefSchema,
  jobRequestSchema,
  modelRefSchema,
  type WireSchema,
} from '@rlhf/service-kit';

/** TrainRewardModelRequest (TrainPreferenceModelRequest has the same numbers). */
const pairModelTrainSchema: WireSchema = {
  1: { name: 'job_id' },
  2: { name: 'base_model', message: modelRefSchema },
  3: { name: 'preferences', message: datasetRefSchema },
  4: { name: 'eval_dataset', message: datasetRefSchema },
  6: { name: 'output_uri' },
  7: { name: 'labels', map: true },
};

export const rewardUtf8Schemas: Record<string, WireSchema> = {
  score: {
    1: { name: 'model', message: modelRefSchema },
    2: {
      name: 'items',
      repeated: true,
      message: {
        1: { name: 'prompt' },
        2: { name: 'responses', repeated: true },
        3: { name: 'conversation', message: conversationSchema },
      },
    },
  },
  trainRewardModel: pairModelTrainSchema,
  getRewardTrainingJob: jobRequestSchema,
  watchRewardTraining: jobRequestSchema,
  cancelRewardTrainingJob: jobRequestSchema,
};
