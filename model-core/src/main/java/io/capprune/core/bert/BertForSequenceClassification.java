package io.capprune.core.bert;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.SparseFormat;
import ai.djl.nn.Activation;
import ai.djl.nn.core.Embedding;
import ai.djl.nn.core.Linear;
import ai.djl.nn.norm.Dropout;
import ai.djl.nn.norm.LayerNorm;
import io.capprune.core.checkpoint.BertConfig;
import io.capprune.core.tensor.NDArrays;
import java.util.Arrays;
import java.util.Map;

/**
 * BERT for sequence classification as Hugging Face's {@code modeling_bert.py} computes it, written
 * as a pure function of a map of named parameters (Hugging Face names without the {@code bert.}
 * prefix; Linear weights [out, in]).
 *
 * <p>The parameters are only read: never copied, detached or converted, so a caller can pass fresh
 * autograd leaves (for example a masked effective weight W*M) and get their gradients back. Every
 * intermediate array is computed with an activation as its first operand, which attaches it to the
 * manager of the inputs ({@link BertInputs#manager()}); closing that manager frees the step.
 *
 * <p>Heads per layer and FFN width per layer are read from the weight shapes, so a model exported
 * after structured pruning (fewer heads or neurons in some layers) runs unchanged.
 */
public final class BertForSequenceClassification {

  private final BertConfig config;

  public BertForSequenceClassification(BertConfig config) {
    this.config = config;
  }

  public BertConfig config() {
    return config;
  }

  /**
   * Runs the model. The parameters' data type (float32 or float64) is that of {@code
   * embeddings.word_embeddings.weight}; all parameters and masks must have it.
   *
   * @param training dropout on (Hugging Face {@code model.train()}) or off ({@code model.eval()})
   * @param masks structured-pruning masks, or null
   */
  public BertOutputs forward(
      Map<String, NDArray> params, BertInputs in, boolean training, StructuredMasks masks) {
    Params p = new Params(params);
    DataType dtype = p.get("embeddings.word_embeddings.weight").getDataType();
    if (!dtype.isFloating()) {
      throw new IllegalArgumentException(
          "parameter 'embeddings.word_embeddings.weight' must be floating point, got " + dtype);
    }
    p.dtype = dtype;
    checkInputs(in);
    int layers = config.numHiddenLayers();
    checkMask(masks == null ? null : masks.headMask(), "headMask", layers, dtype);
    checkMask(masks == null ? null : masks.neuronMask(), "neuronMask", layers, dtype);

    NDArray extendedMask = extendedAttentionMask(in.attentionMask(), dtype);
    NDArray hidden = embeddings(p, in, training);
    for (int l = 0; l < layers; l++) {
      NDArray headMask = masks == null ? null : maskRow(masks.headMask(), l, in.manager());
      NDArray neuronMask = masks == null ? null : maskRow(masks.neuronMask(), l, in.manager());
      hidden =
          layer(
              p, "encoder.layer." + l + ".", hidden, extendedMask, training, headMask, neuronMask);
    }

    NDArray pooled = p.has("pooler.dense.weight") ? pooler(p, hidden) : null;
    NDArray features = pooled != null ? pooled : hidden.get(new NDIndex(":, 0, :"));
    // HF's classifier dropout uses classifier_dropout, which is null (= hidden_dropout_prob) for
    // BERT.
    NDArray classifierInput = dropout(features, config.hiddenDropoutProb(), training);
    NDArray logits = p.has("classifier.weight") ? classifier(p, classifierInput) : null;
    return new BertOutputs(hidden, pooled, classifierInput, logits);
  }

  /** BertEmbeddings: word + absolute position + token type, then LayerNorm and dropout. */
  NDArray embeddings(Params p, BertInputs in, boolean training) {
    int t = in.seqLength();
    NDArray wordEmb =
        p.get("embeddings.word_embeddings.weight", config.vocabSize(), config.hiddenSize());
    NDArray posEmb =
        p.get(
            "embeddings.position_embeddings.weight",
            config.maxPositionEmbeddings(),
            config.hiddenSize());
    NDArray typeEmb =
        p.get(
            "embeddings.token_type_embeddings.weight", config.typeVocabSize(), config.hiddenSize());
    NDArray positionIds = in.manager().arange(0, t, 1, DataType.INT64).reshape(1, t);
    NDArray x =
        embed(in.inputIds(), wordEmb)
            .add(embed(in.tokenTypeIds(), typeEmb))
            .add(embed(positionIds, posEmb));
    x = layerNorm(p, "embeddings.LayerNorm.", x);
    return dropout(x, config.hiddenDropoutProb(), training);
  }

  /** BertLayer: attention (self + output), then intermediate and output. */
  NDArray layer(
      Params p,
      String prefix,
      NDArray hidden,
      NDArray extendedMask,
      boolean training,
      NDArray headMask,
      NDArray neuronMask) {
    NDArray context =
        selfAttention(p, prefix + "attention.self.", hidden, extendedMask, training, headMask);
    NDArray attentionOutput =
        selfOutput(p, prefix + "attention.output.", context, hidden, training);
    NDArray inter = intermediate(p, prefix + "intermediate.", attentionOutput, neuronMask);
    return output(p, prefix + "output.", inter, attentionOutput, training);
  }

  /** BertSelfAttention: scaled dot-product attention over heads, returns [B, T, heads*headDim]. */
  NDArray selfAttention(
      Params p,
      String prefix,
      NDArray hidden,
      NDArray extendedMask,
      boolean training,
      NDArray headMask) {
    long b = hidden.getShape().get(0);
    long t = hidden.getShape().get(1);
    int d = config.headDim();
    NDArray qw = p.get(prefix + "query.weight", -1, config.hiddenSize());
    long allHead = qw.getShape().get(0);
    if (allHead == 0 || allHead % d != 0) {
      throw new IllegalArgumentException(
          "parameter '"
              + prefix
              + "query.weight' has "
              + allHead
              + " rows, not a positive multiple of the head size "
              + d);
    }
    long heads = allHead / d;
    NDArray q =
        transposeForScores(
            linear(p, prefix + "query.", hidden, allHead, config.hiddenSize()), b, t, heads, d);
    NDArray k =
        transposeForScores(
            linear(p, prefix + "key.", hidden, allHead, config.hiddenSize()), b, t, heads, d);
    NDArray v =
        transposeForScores(
            linear(p, prefix + "value.", hidden, allHead, config.hiddenSize()), b, t, heads, d);

    // An engine-owned constant, not div(Number): see NDArrays.scalar.
    NDArray scale = NDArrays.scalar(hidden.getManager(), Math.sqrt(d), hidden.getDataType());
    NDArray scores = q.matMul(k.transpose(0, 1, 3, 2)).div(scale).add(extendedMask);
    NDArray probs = scores.softmax(-1);
    probs = dropout(probs, config.attentionProbsDropoutProb(), training);
    if (headMask != null) {
      if (headMask.getShape().get(0) != heads) {
        throw new IllegalArgumentException(
            "headMask has "
                + headMask.getShape().get(0)
                + " heads for '"
                + prefix
                + "', the layer has "
                + heads);
      }
      probs = probs.mul(headMask.reshape(1, heads, 1, 1));
    }
    return probs.matMul(v).transpose(0, 2, 1, 3).reshape(b, t, allHead);
  }

  /** BertSelfOutput: dense, dropout, residual, LayerNorm. */
  NDArray selfOutput(Params p, String prefix, NDArray context, NDArray input, boolean training) {
    NDArray x =
        linear(p, prefix + "dense.", context, config.hiddenSize(), context.getShape().get(2));
    x = dropout(x, config.hiddenDropoutProb(), training);
    return layerNorm(p, prefix + "LayerNorm.", x.add(input));
  }

  /** BertIntermediate: dense then exact (erf) GELU; the neuron mask multiplies the GELU output. */
  NDArray intermediate(Params p, String prefix, NDArray hidden, NDArray neuronMask) {
    NDArray x = Activation.gelu(linear(p, prefix + "dense.", hidden, -1, config.hiddenSize()));
    if (neuronMask != null) {
      if (neuronMask.getShape().get(0) != x.getShape().get(2)) {
        throw new IllegalArgumentException(
            "neuronMask has "
                + neuronMask.getShape().get(0)
                + " neurons for '"
                + prefix
                + "dense', the layer has "
                + x.getShape().get(2));
      }
      x = x.mul(neuronMask);
    }
    return x;
  }

  /** BertOutput: dense back to hidden size, dropout, residual, LayerNorm. */
  NDArray output(Params p, String prefix, NDArray inter, NDArray input, boolean training) {
    NDArray x = linear(p, prefix + "dense.", inter, config.hiddenSize(), inter.getShape().get(2));
    x = dropout(x, config.hiddenDropoutProb(), training);
    return layerNorm(p, prefix + "LayerNorm.", x.add(input));
  }

  /** BertPooler: tanh(dense(h_[CLS])). */
  NDArray pooler(Params p, NDArray hidden) {
    NDArray cls = hidden.get(new NDIndex(":, 0, :"));
    return linear(p, "pooler.dense.", cls, config.hiddenSize(), config.hiddenSize()).tanh();
  }

  /** The classification head on the (dropped-out) pooled output. */
  NDArray classifier(Params p, NDArray features) {
    return linear(p, "classifier.", features, config.numLabels(), config.hiddenSize());
  }

  /**
   * HF's extended attention mask: 0 for real keys, the most negative finite value for padded ones,
   * added to the scores so padded keys get zero probability. Shape [B, 1, 1, T].
   */
  static NDArray extendedAttentionMask(NDArray attentionMask, DataType dtype) {
    long b = attentionMask.getShape().get(0);
    long t = attentionMask.getShape().get(1);
    double min =
        dtype == DataType.FLOAT64
            ? -Double.MAX_VALUE
            : dtype == DataType.FLOAT16 ? -65504 : -Float.MAX_VALUE;
    NDManager m = attentionMask.getManager();
    // Constant w.r.t. every parameter, so no gradient flows here; still no Number ops
    // (NDArrays.scalar).
    NDArray minValue =
        dtype == DataType.FLOAT64 ? NDArrays.owned(m.create(min)) : NDArrays.scalar(m, min, dtype);
    NDArray one = NDArrays.scalar(m, 1, dtype);
    return one.sub(attentionMask.toType(dtype, false)).mul(minValue).reshape(b, 1, 1, t);
  }

  private static NDArray transposeForScores(NDArray x, long b, long t, long heads, int d) {
    return x.reshape(b, t, heads, d).transpose(0, 2, 1, 3);
  }

  private static NDArray embed(NDArray ids, NDArray weight) {
    return Embedding.embedding(ids, weight, SparseFormat.DENSE).singletonOrThrow();
  }

  private static NDArray linear(Params p, String prefix, NDArray x, long out, long in) {
    NDArray w = p.get(prefix + "weight", out, in);
    NDArray bias = p.get(prefix + "bias", w.getShape().get(0));
    return Linear.linear(x, w, bias).singletonOrThrow();
  }

  private NDArray layerNorm(Params p, String prefix, NDArray x) {
    NDArray gamma = p.get(prefix + "weight", config.hiddenSize());
    NDArray beta = p.get(prefix + "bias", config.hiddenSize());
    return LayerNorm.layerNorm(
            x, new Shape(config.hiddenSize()), gamma, beta, config.layerNormEps())
        .singletonOrThrow();
  }

  private static NDArray dropout(NDArray x, float rate, boolean training) {
    if (!training || rate == 0f) {
      return x;
    }
    return Dropout.dropout(x, rate, true).singletonOrThrow();
  }

  private void checkInputs(BertInputs in) {
    int t = in.seqLength();
    if (t > config.maxPositionEmbeddings()) {
      throw new IllegalArgumentException(
          "sequence length "
              + t
              + " exceeds max_position_embeddings "
              + config.maxPositionEmbeddings());
    }
    // host-known maxima spare a device round trip per forward pass
    long maxId = in.maxInputId() >= 0 ? in.maxInputId() : in.inputIds().max().getLong();
    if (maxId >= config.vocabSize()) {
      throw new IllegalArgumentException(
          "inputIds holds token id " + maxId + " >= vocab_size " + config.vocabSize());
    }
    long maxType =
        in.maxTokenTypeId() >= 0 ? in.maxTokenTypeId() : in.tokenTypeIds().max().getLong();
    if (maxType >= config.typeVocabSize()) {
      throw new IllegalArgumentException(
          "tokenTypeIds holds id " + maxType + " >= type_vocab_size " + config.typeVocabSize());
    }
  }

  private static void checkMask(NDArray mask, String name, int layers, DataType dtype) {
    if (mask == null) {
      return;
    }
    if (mask.getShape().dimension() != 2 || mask.getShape().get(0) != layers) {
      throw new IllegalArgumentException(
          name + " must be [" + layers + ", n], got " + mask.getShape());
    }
    if (mask.getDataType() != dtype) {
      throw new IllegalArgumentException(
          name + " has type " + mask.getDataType() + ", the parameters " + dtype);
    }
  }

  /** Row l of a [L, n] mask, attached to the step's manager rather than the caller's. */
  private static NDArray maskRow(NDArray mask, int l, NDManager scope) {
    return mask == null ? null : mask.get(scope, l);
  }

  /** Lookup with error messages that name the tensor; -1 in an expected shape means any size. */
  static final class Params {
    private final Map<String, NDArray> map;
    DataType dtype;

    Params(Map<String, NDArray> map) {
      this.map = map;
    }

    boolean has(String name) {
      return map.containsKey(name);
    }

    NDArray get(String name, long... expected) {
      NDArray a = map.get(name);
      if (a == null) {
        throw new IllegalArgumentException("missing parameter '" + name + "'");
      }
      if (dtype != null && a.getDataType() != dtype) {
        throw new IllegalArgumentException(
            "parameter '"
                + name
                + "' has type "
                + a.getDataType()
                + ", expected "
                + dtype
                + " like embeddings.word_embeddings.weight");
      }
      if (expected.length > 0) {
        Shape s = a.getShape();
        boolean ok = s.dimension() == expected.length;
        for (int i = 0; ok && i < expected.length; i++) {
          ok = expected[i] < 0 || s.get(i) == expected[i];
        }
        if (!ok) {
          throw new IllegalArgumentException(
              "parameter '"
                  + name
                  + "' has shape "
                  + s
                  + ", expected "
                  + Arrays.toString(expected).replace("-1", "*"));
        }
      }
      return a;
    }
  }
}
