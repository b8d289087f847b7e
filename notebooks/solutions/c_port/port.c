/* One right answer to exercises/c_port/xent.c: the block between its "your port"
 * markers. exercises/c_port/prepare.py splices it into the template (splice()). */

/* The weight of row i's target, or 0 for an ignored row. */
static double row_weight(long t, const double *weight, long ignore_index)
{
    if (t == ignore_index)
        return 0.0;
    return weight ? weight[t] : 1.0;
}

/* The max m of one row and s = sum_j exp(x_j - m): shifted, exp cannot overflow. */
static double shifted_sum(int c, const double *x, double *m)
{
    double s = 0.0;
    *m = -INFINITY;
    for (int j = 0; j < c; j++)
        if (x[j] > *m) *m = x[j];
    if (isinf(*m) && *m < 0)
        *m = 0.0; /* every logit -inf: nothing to shift */
    for (int j = 0; j < c; j++)
        s += exp(x[j] - *m);
    return s;
}

/* log sum_j exp(x_j) = m + log s. */
static double log_sum_exp(int c, const double *x)
{
    double m, s = shifted_sum(c, x, &m);
    return m + log(s);
}

static void cross_entropy(int n, int c, const double *logits, const long *target,
                          const double *weight, long ignore_index, enum reduction reduction,
                          double *out)
{
    double numerator = 0.0, denominator = 0.0;
    for (int i = 0; i < n; i++) {
        const double *x = logits + (size_t)i * c;
        double w = row_weight(target[i], weight, ignore_index);
        double loss = w == 0.0 && target[i] == ignore_index ? 0.0
                      : w * (log_sum_exp(c, x) - x[target[i]]);
        if (reduction == NONE)
            out[i] = loss;
        numerator += loss;
        denominator += w;
    }
    if (reduction == SUM)
        out[0] = numerator;
    if (reduction == MEAN)
        out[0] = numerator / denominator; /* 0 / 0 = nan when nothing is kept */
}

static void cross_entropy_grad(int n, int c, const double *logits, const long *target,
                               const double *weight, long ignore_index,
                               enum reduction reduction, const double *grad_output,
                               double *grad)
{
    double denominator = 0.0;
    for (int i = 0; i < n; i++)
        denominator += row_weight(target[i], weight, ignore_index);
    for (int i = 0; i < n; i++) {
        const double *x = logits + (size_t)i * c;
        double *g = grad + (size_t)i * c;
        double w = row_weight(target[i], weight, ignore_index);
        if (target[i] == ignore_index) {
            for (int j = 0; j < c; j++) g[j] = 0.0;
            continue;
        }
        double scale = reduction == NONE ? grad_output[i]
                       : reduction == SUM ? grad_output[0] : grad_output[0] / denominator;
        /* p_j = exp(x_j - m) / s, not exp(x_j - lse): at logits of 1e4, lse = m + log s
         * rounds away log s, and every tied maximum would get p = 1 */
        double m, s = shifted_sum(c, x, &m);
        for (int j = 0; j < c; j++)
            g[j] = scale * w * (exp(x[j] - m) / s - (j == target[i]));
    }
}
