/** Prompt plans for VLMs that take token-level input: Qwen2.5-VL / Qwen3-VL M-RoPE layouts (docs/qwen.md). */
export {
  formatOneDecimal,
  planQwenPrompt,
  QWEN_PROMPT_FAMILIES,
  QWEN_TOKEN_IDS,
  temporalIndex,
  visualInput,
} from './qwen.js';
export type {
  PromptBlock,
  PromptSegment,
  QwenPromptFamily,
  QwenPromptOptions,
  QwenPromptPlan,
  TextTokenEncoder,
} from './qwen.js';
export { loadConversation, planConversationFile, promptPlanJson, type Conversation } from './conversation.js';
export { isQwenTokenSet, qwenServingInput, type QwenServingInput } from './serving.js';
