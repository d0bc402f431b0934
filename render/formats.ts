/**
 * The page image formats writePages encodes (render/pages.ts), in a module
 * with no imports so that `vtc render --help` can list them without loading
 * canvas and sharp.
 */
export type ImageFormat = 'png' | 'jpeg' | 'webp';
export const IMAGE_FORMATS: readonly ImageFormat[] = ['png', 'jpeg', 'webp'];
