package io.capprune.core.prune;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class ParameterNamesTest {

  @Test
  void prunableAreTheSixEncoderLinearWeights() {
    for (String s :
        new String[] {
          "attention.self.query",
          "attention.self.key",
          "attention.self.value",
          "attention.output.dense",
          "intermediate.dense",
          "output.dense"
        }) {
      assertTrue(ParameterNames.isPrunable("encoder.layer.11." + s + ".weight"), s);
      assertTrue(ParameterNames.isPrunable("bert.encoder.layer.0." + s + ".weight"), s);
      assertFalse(ParameterNames.isPrunable("encoder.layer.11." + s + ".bias"), s);
    }
    assertEquals(11, ParameterNames.layerOf("encoder.layer.11.output.dense.weight"));
    assertEquals(-1, ParameterNames.layerOf("pooler.dense.weight"));
  }

  @Test
  void notPrunable() {
    for (String s :
        new String[] {
          "encoder.layer.0.attention.output.LayerNorm.weight",
          "encoder.layer.0.output.LayerNorm.weight",
          "pooler.dense.weight",
          "classifier.weight",
          "embeddings.word_embeddings.weight",
          "encoder.layer.0.attention.self.query.mask_scores",
          "qa_outputs.weight"
        }) {
      assertFalse(ParameterNames.isPrunable(s), s);
    }
  }

  @Test
  void embeddingsAndEncoder() {
    assertTrue(ParameterNames.isEmbedding("embeddings.word_embeddings.weight"));
    assertTrue(ParameterNames.isEmbedding("bert.embeddings.LayerNorm.bias"));
    assertFalse(ParameterNames.isEmbedding("encoder.layer.0.output.dense.weight"));
    assertTrue(ParameterNames.isEncoder("encoder.layer.0.output.LayerNorm.bias"));
    assertFalse(ParameterNames.isEncoder("pooler.dense.bias"));
  }

  @Test
  void noDecayOnBiasesAndLayerNorms() {
    assertTrue(ParameterNames.isNoDecay("encoder.layer.0.output.dense.bias"));
    assertTrue(ParameterNames.isNoDecay("encoder.layer.0.output.LayerNorm.weight"));
    assertTrue(ParameterNames.isNoDecay("embeddings.LayerNorm.bias"));
    assertTrue(ParameterNames.isNoDecay("classifier.bias"));
    assertFalse(ParameterNames.isNoDecay("encoder.layer.0.output.dense.weight"));
    assertFalse(ParameterNames.isNoDecay("classifier.weight"));
  }

  @Test
  void scoresNameFollowsMaskedLinear() {
    assertEquals(
        "encoder.layer.3.attention.self.query.mask_scores",
        ParameterNames.scoresName("encoder.layer.3.attention.self.query.weight"));
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class, () -> ParameterNames.scoresName("pooler.dense.weight"));
    assertEquals("'pooler.dense.weight' is not a prunable encoder weight", e.getMessage());
  }
}
