package io.capprune.spark.pipeline;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.capprune.core.exchange.WirePrecision;
import io.capprune.core.loss.LossTerms;
import io.capprune.spark.config.ConfigValidationException;
import io.capprune.spark.train.GradientBuffer;
import java.util.Map;
import org.apache.spark.SparkConf;
import org.apache.spark.serializer.KryoSerializer;
import org.apache.spark.serializer.SerializerInstance;
import org.junit.jupiter.api.Test;
import scala.reflect.ClassTag$;

class SparkContextsTest {

  @Test
  void kryoIsRefusedBeforeAnythingRunsNamingTheKey() {
    ConfigValidationException e =
        assertThrows(
            ConfigValidationException.class,
            () ->
                SparkContexts.checkSerializer(
                    Map.of("spark.serializer", KryoSerializer.class.getName())));
    assertTrue(e.getMessage().contains("spark.serializer"), e.getMessage());
    assertTrue(e.getMessage().contains(SparkContexts.JAVA_SERIALIZER), e.getMessage());
    assertDoesNotThrow(() -> SparkContexts.checkSerializer(Map.of()));
    assertDoesNotThrow(
        () ->
            SparkContexts.checkSerializer(
                Map.of("spark.serializer", SparkContexts.JAVA_SERIALIZER)));
  }

  /** Why the check exists: the first step's task result would not survive Spark's Kryo. */
  @Test
  void sparksKryoCannotShipAGradientBuffer() {
    SerializerInstance kryo = new KryoSerializer(new SparkConf()).newInstance();
    var tag = ClassTag$.MODULE$.<GradientBuffer>apply(GradientBuffer.class);
    GradientBuffer b =
        GradientBuffer.of(new float[] {1, 2, 3}, LossTerms.ZERO, 2, 0, WirePrecision.FP16);
    assertThrows(RuntimeException.class, () -> kryo.deserialize(kryo.serialize(b, tag), tag));
  }
}
