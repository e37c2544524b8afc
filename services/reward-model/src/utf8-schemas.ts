/** The string fields of RewardModelService's requests (reward_model.proto numbers), checked for UTF-8. */
import { conversationSchema, modelRefSchema, type WireSchema } from '@rlhf/service-kit';

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
};
