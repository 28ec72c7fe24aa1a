package io.capprune.core.loss;

/**
 * What the classifier is trained against for one batch: class ids (GLUE classification) or real
 * scores (STS-B regression, a single logit). Exactly one of the two is non-null.
 */
public record Targets(int[] classes, float[] scores) {

  public Targets {
    if ((classes == null) == (scores == null)) {
      throw new IllegalArgumentException(
          "give either class labels or regression scores, not both or neither");
    }
  }

  public static Targets classes(int... labels) {
    return new Targets(labels.clone(), null);
  }

  public static Targets regression(float... scores) {
    return new Targets(null, scores.clone());
  }

  public boolean isRegression() {
    return scores != null;
  }

  public int size() {
    return classes != null ? classes.length : scores.length;
  }
}
