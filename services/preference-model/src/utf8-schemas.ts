/** The string fields of PreferenceModelService's requests (preference_model.proto numbers), checked for UTF-8. */
import { conversationSchema, modelRefSchema, type WireSchema } from '@rlhf/service-kit';

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
};
