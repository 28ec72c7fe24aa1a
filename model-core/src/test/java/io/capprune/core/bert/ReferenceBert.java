package io.capprune.core.bert;

import io.capprune.core.checkpoint.BertConfig;
import io.capprune.core.tensor.HostTensor;
import java.util.Map;

/**
 * BERT's eval-mode forward pass in plain Java double loops, written from modeling_bert.py without
 * DJL, as an independent reference for the DJL implementation.
 */
final class ReferenceBert {

  final double[][][] hidden; // [B][T][H]
  final double[][] pooled; // [B][H]
  final double[][] logits; // [B][numLabels]

  ReferenceBert(BertConfig c, Map<String, HostTensor> p, int[][] ids, int[][] types, int[][] mask) {
    int b = ids.length;
    int t = ids[0].length;
    int h = c.hiddenSize();
    hidden = new double[b][][];
    pooled = new double[b][];
    logits = new double[b][];
    for (int n = 0; n < b; n++) {
      double[][] x = new double[t][h];
      for (int i = 0; i < t; i++) {
        for (int k = 0; k < h; k++) {
          x[i][k] =
              at(p, "embeddings.word_embeddings.weight", ids[n][i], k)
                  + at(p, "embeddings.position_embeddings.weight", i, k)
                  + at(p, "embeddings.token_type_embeddings.weight", types[n][i], k);
        }
        x[i] = layerNorm(x[i], p, "embeddings.LayerNorm.", c.layerNormEps());
      }
      for (int l = 0; l < c.numHiddenLayers(); l++) {
        x = layer(c, p, "encoder.layer." + l + ".", x, mask[n]);
      }
      hidden[n] = x;
      pooled[n] = linear(x[0], p, "pooler.dense.");
      for (int k = 0; k < h; k++) {
        pooled[n][k] = Math.tanh(pooled[n][k]);
      }
      logits[n] = linear(pooled[n], p, "classifier.");
    }
  }

  private static double[][] layer(
      BertConfig c, Map<String, HostTensor> p, String pre, double[][] x, int[] mask) {
    int t = x.length;
    int h = c.hiddenSize();
    int heads = c.numAttentionHeads();
    int d = c.headDim();
    double[][] q = new double[t][];
    double[][] k = new double[t][];
    double[][] v = new double[t][];
    for (int i = 0; i < t; i++) {
      q[i] = linear(x[i], p, pre + "attention.self.query.");
      k[i] = linear(x[i], p, pre + "attention.self.key.");
      v[i] = linear(x[i], p, pre + "attention.self.value.");
    }
    double[][] ctx = new double[t][h];
    for (int head = 0; head < heads; head++) {
      for (int i = 0; i < t; i++) {
        double[] s = new double[t];
        double max = Double.NEGATIVE_INFINITY;
        for (int j = 0; j < t; j++) {
          if (mask[j] == 0) {
            s[j] = Double.NEGATIVE_INFINITY; // padded keys get probability 0
            continue;
          }
          double dot = 0;
          for (int e = 0; e < d; e++) {
            dot += q[i][head * d + e] * k[j][head * d + e];
          }
          s[j] = dot / Math.sqrt(d);
          max = Math.max(max, s[j]);
        }
        double sum = 0;
        for (int j = 0; j < t; j++) {
          s[j] = Math.exp(s[j] - max);
          sum += s[j];
        }
        for (int j = 0; j < t; j++) {
          for (int e = 0; e < d; e++) {
            ctx[i][head * d + e] += s[j] / sum * v[j][head * d + e];
          }
        }
      }
    }
    double[][] out = new double[t][];
    for (int i = 0; i < t; i++) {
      double[] a = linear(ctx[i], p, pre + "attention.output.dense.");
      for (int e = 0; e < h; e++) {
        a[e] += x[i][e];
      }
      a = layerNorm(a, p, pre + "attention.output.LayerNorm.", c.layerNormEps());
      double[] inter = linear(a, p, pre + "intermediate.dense.");
      for (int e = 0; e < inter.length; e++) {
        inter[e] = 0.5 * inter[e] * (1 + erf(inter[e] / Math.sqrt(2)));
      }
      double[] o = linear(inter, p, pre + "output.dense.");
      for (int e = 0; e < h; e++) {
        o[e] += a[e];
      }
      out[i] = layerNorm(o, p, pre + "output.LayerNorm.", c.layerNormEps());
    }
    return out;
  }

  /** y = W x + b with W stored [out, in] as PyTorch's Linear. */
  static double[] linear(double[] x, Map<String, HostTensor> p, String pre) {
    HostTensor w = p.get(pre + "weight");
    HostTensor bias = p.get(pre + "bias");
    int out = w.shape()[0];
    int in = w.shape()[1];
    double[] y = new double[out];
    for (int o = 0; o < out; o++) {
      double s = bias.data()[o];
      for (int i = 0; i < in; i++) {
        s += w.data()[o * in + i] * x[i];
      }
      y[o] = s;
    }
    return y;
  }

  static double[] layerNorm(double[] x, Map<String, HostTensor> p, String pre, double eps) {
    double mean = 0;
    for (double v : x) {
      mean += v;
    }
    mean /= x.length;
    double var = 0;
    for (double v : x) {
      var += (v - mean) * (v - mean);
    }
    var /= x.length; // biased variance, as torch.nn.LayerNorm
    double[] y = new double[x.length];
    for (int i = 0; i < x.length; i++) {
      y[i] =
          (x[i] - mean) / Math.sqrt(var + eps) * p.get(pre + "weight").data()[i]
              + p.get(pre + "bias").data()[i];
    }
    return y;
  }

  private static double at(Map<String, HostTensor> p, String name, int row, int col) {
    HostTensor t = p.get(name);
    return t.data()[row * t.shape()[1] + col];
  }

  /** erf by its Maclaurin series: exact to ~1e-13 for |x| < 5; erfc(5) is 1.5e-12. */
  static double erf(double x) {
    double ax = Math.abs(x);
    if (ax >= 5) {
      return Math.signum(x);
    }
    double term = ax;
    double sum = ax;
    for (int n = 1; n < 200; n++) {
      term *= -ax * ax / n;
      double add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17) {
        break;
      }
    }
    return Math.signum(x) * 2 / Math.sqrt(Math.PI) * sum;
  }
}
