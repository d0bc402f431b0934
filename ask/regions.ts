/**
 * Region geometry for the `focus` planner (pure): candidate windows over a
 * picture, window scores from a per-patch score grid laid over the whole
 * picture (the encoder's thumbnail scores), greedy selection and merging of
 * overlapping picks into their bounding boxes.
 */

/** [x, y, width, height] in source pixels. */
export type Box = [x: number, y: number, width: number, height: number];

/**
 * Window positions of size w × h covering a W × H picture with a stride of half a
 * window (the last row/column flush with the edge), at most `maxWindows` (the stride
 * grows to stay under it).
 *
 * @example
 * windowGrid(100, 50, 50, 50); // [[0,0,50,50], [25,0,50,50], [50,0,50,50]]
 */
export function windowGrid(width: number, height: number, w: number, h: number, maxWindows = 64): Box[] {
  const axis = (total: number, size: number, steps: number): number[] => {
    if (size >= total) return [0];
    const positions = new Set<number>();
    for (let i = 0; i <= steps; i++) positions.add(Math.round(((total - size) * i) / steps));
    return [...positions].sort((a, b) => a - b);
  };
  let stepsX = Math.max(1, Math.ceil((width - w) / Math.max(1, w / 2)));
  let stepsY = Math.max(1, Math.ceil((height - h) / Math.max(1, h / 2)));
  while ((stepsX + 1) * (stepsY + 1) > maxWindows && (stepsX > 1 || stepsY > 1)) {
    if (stepsX >= stepsY) stepsX--;
    else stepsY--;
  }
  const xs = axis(width, w, stepsX);
  const ys = axis(height, h, stepsY);
  const boxes: Box[] = [];
  for (const y of ys) for (const x of xs) boxes.push([x, y, Math.min(w, width), Math.min(h, height)]);
  return boxes;
}

/** Per-patch scores over the whole picture: rows × cols, row-major. */
export interface ScoreGrid {
  rows: number;
  cols: number;
  scores: Float32Array;
}

/**
 * Mean patch score inside a box, each patch weighted by how much of it the box covers.
 *
 * @example
 * boxScore({ rows: 1, cols: 2, scores: Float32Array.of(0, 1) }, [50, 0, 50, 10], 100, 10); // 1
 */
export function boxScore(grid: ScoreGrid, box: Box, width: number, height: number): number {
  const [x, y, w, h] = box;
  const cw = width / grid.cols;
  const ch = height / grid.rows;
  let sum = 0;
  let weight = 0;
  for (let r = Math.floor(y / ch); r < Math.min(grid.rows, Math.ceil((y + h) / ch)); r++) {
    const overlapY = Math.min(y + h, (r + 1) * ch) - Math.max(y, r * ch);
    if (overlapY <= 0) continue;
    for (let c = Math.floor(x / cw); c < Math.min(grid.cols, Math.ceil((x + w) / cw)); c++) {
      const overlapX = Math.min(x + w, (c + 1) * cw) - Math.max(x, c * cw);
      if (overlapX <= 0) continue;
      const a = overlapX * overlapY;
      sum += a * grid.scores[r * grid.cols + c]!;
      weight += a;
    }
  }
  return weight > 0 ? sum / weight : -Infinity;
}

function overlaps(a: Box, b: Box): boolean {
  return a[0] < b[0] + b[2] && b[0] < a[0] + a[2] && a[1] < b[1] + b[3] && b[1] < a[1] + a[3];
}

function union(a: Box, b: Box): Box {
  const x = Math.min(a[0], b[0]);
  const y = Math.min(a[1], b[1]);
  return [x, y, Math.max(a[0] + a[2], b[0] + b[2]) - x, Math.max(a[1] + a[3], b[1] + b[3]) - y];
}

/**
 * Merges overlapping boxes into their bounding boxes until none overlap (a merged
 * box can reach a third one); order follows each group's first box.
 *
 * @example
 * mergeOverlapping([[0, 0, 10, 10], [5, 5, 10, 10], [40, 40, 5, 5]]); // [[0, 0, 15, 15], [40, 40, 5, 5]]
 */
export function mergeOverlapping(boxes: readonly Box[]): Box[] {
  const out: Box[] = boxes.map((b) => [...b] as Box);
  for (let merged = true; merged; ) {
    merged = false;
    for (let i = 0; i < out.length && !merged; i++) {
      for (let j = i + 1; j < out.length; j++) {
        if (overlaps(out[i]!, out[j]!)) {
          out[i] = union(out[i]!, out[j]!);
          out.splice(j, 1);
          merged = true;
          break;
        }
      }
    }
  }
  return out;
}

/**
 * The `count` highest-scoring boxes (ties: earlier box first), in score order.
 *
 * @example
 * topBoxes([[0,0,1,1], [1,0,1,1]], [0.2, 0.9], 1); // [[1,0,1,1]]
 */
export function topBoxes(boxes: readonly Box[], scores: readonly number[], count: number): Box[] {
  const order = boxes.map((_, i) => i).sort((a, b) => scores[b]! - scores[a]! || a - b);
  return order.slice(0, count).map((i) => boxes[i]!);
}
