package io.capprune.core.loss;

import ai.djl.ndarray.NDArray;
import io.capprune.core.tensor.NDArrays;

/**
 * Knowledge distillation of the movement-pruning code CAP forks (docs/cap-math.md §2): T² ·
 * KL(softmax(t/T) ‖ softmax(s/T)) with reduction batchmean, i.e. summed over classes and batch and
 * divided by B. With one output (STS-B) both softmaxes are 1 and the term is exactly 0, as in the
 * reference. {@link #meanSquaredError} is this project's option for regression (off by default).
 */
public final class Distillation {

  private Distillation() {}

  /**
   * @param studentLogits [B, C], gradients flow into it
   * @param teacherLogits [B, C], precomputed; treated as a constant
   */
  public static NDArray compute(NDArray studentLogits, NDArray teacherLogits, float temperature) {
    if (!(temperature > 0)) {
      throw new IllegalArgumentException("kdTemperature must be > 0, got " + temperature);
    }
    if (!studentLogits.getShape().equals(teacherLogits.getShape())
        || studentLogits.getShape().dimension() != 2) {
      throw new IllegalArgumentException(
          "student logits "
              + studentLogits.getShape()
              + " and teacher logits "
              + teacherLogits.getShape()
              + " must both be [B, C]");
    }
    long b = studentLogits.getShape().get(0);
    NDArray teacher =
        teacherLogits
            .stopGradient()
            .toType(studentLogits.getDataType(), false)
            .div(
                NDArrays.scalar(
                    studentLogits.getManager(), temperature, studentLogits.getDataType()));
    NDArray teacherLogP = teacher.logSoftmax(1);
    NDArray teacherP = teacherLogP.exp();
    NDArray studentLogP =
        studentLogits
            .div(
                NDArrays.scalar(
                    studentLogits.getManager(), temperature, studentLogits.getDataType()))
            .logSoftmax(1);
    return teacherP
        .mul(teacherLogP.sub(studentLogP))
        .sum()
        .div(NDArrays.scalar(studentLogits.getManager(), b, studentLogits.getDataType()))
        .mul(
            NDArrays.scalar(
                studentLogits.getManager(),
                temperature * temperature,
                studentLogits.getDataType()));
  }

  /**
   * Regression distillation, not in the reference: mean over the batch of (s - t)² between the
   * student's and the teacher's single outputs. No temperature: a score has no softmax to soften.
   *
   * @param studentLogits [B, 1], gradients flow into it
   * @param teacherLogits [B, 1], precomputed; treated as a constant
   */
  public static NDArray meanSquaredError(NDArray studentLogits, NDArray teacherLogits) {
    if (!studentLogits.getShape().equals(teacherLogits.getShape())
        || studentLogits.getShape().dimension() != 2
        || studentLogits.getShape().get(1) != 1) {
      throw new IllegalArgumentException(
          "regression distillation needs student and teacher outputs"
              + " of shape [B, 1], got "
              + studentLogits.getShape()
              + " and "
              + teacherLogits.getShape());
    }
    NDArray teacher = teacherLogits.stopGradient().toType(studentLogits.getDataType(), false);
    return studentLogits.sub(teacher).square().mean();
  }
}
