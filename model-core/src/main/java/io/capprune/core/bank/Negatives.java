package io.capprune.core.bank;

import ai.djl.ndarray.NDArray;

/**
 * The extra negatives of one contrastive call, on the device that computes the loss: E columns, row
 * by row with each row's R slices together (the reference's order).
 *
 * @param vectors [E, H] constants (any float type; the loss converts them)
 * @param index [E] int64 global index of each column
 * @param labels [E] int64 label of each column, or null (regression)
 * @param valid [E] boolean, false for a padding column that takes no part (a shard with fewer rows
 *     than the draw asks for); null when every column is valid
 */
public record Negatives(NDArray vectors, NDArray index, NDArray labels, NDArray valid) {

  public int columns() {
    return (int) index.getShape().size();
  }
}
