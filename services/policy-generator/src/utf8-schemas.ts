/**
 * The string fields of PolicyGeneratorService's requests (policy_generator.proto and common.proto numbers),
 * checked for invalid UTF-8 in the raw bytes by service-kit's withUtf8Checks. GenerateRequest and
 * GenerateStreamRequest share their field numbers.
 */
import { conversationSchema, modelRefSchema, type WireSchema } from '@rlhf/service-kit';

const generateSchema: WireSchema = {
  1: { name: 'model', message: modelRefSchema },
  2: { name: 'prompts', repeated: true },
  5: { name: 'sampling', message: { 6: { name: 'stop', repeated: true } } },
  7: { name: 'conversations', repeated: true, message: conversationSchema },
};

export const generatorUtf8Schemas: Record<string, WireSchema> = {
  generate: generateSchema,
  generateStream: generateSchema,
};
