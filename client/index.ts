/**
 * The OpenAI-compatible chat-completions client, below every caller (eval/,
 * video/, the CLI): requests with images, retries, typed endpoint errors.
 */
export {
  apiKeyFromEnv,
  chatCompletion,
  chatCompletionsUrl,
  EndpointError,
  imageDataUrl,
  parseRetryAfter,
  serverErrorMessage,
  userMessage,
} from './openai.js';
export type {
  ChatCompletionOptions,
  ChatCompletionResult,
  ChatMessage,
  ChatUsage,
  ContentPart,
  MessageImage,
} from './openai.js';
