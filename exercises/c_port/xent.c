/* xent.c: cross_entropy and its gradient, ported to C, judged by the golden corpus.
 *
 * From the repository root:
 *
 *   uv run python exercises/c_port/prepare.py build/c_port
 *   cc -std=c99 -O2 -o build/c_port/xent exercises/c_port/xent.c -lm
 *   build/c_port/xent build/c_port/inputs.txt > build/c_port/results.json
 *   uv run xent-ref verify --results build/c_port/results.json --corpus build/c_port/corpus.json
 *
 * Your part is the two functions between the "your port" markers: the loss of
 * xent_ref.cross_entropy (PyTorch's semantics) and its gradient with respect to the
 * logits, for class-index targets, with class weights, ignore_index and the three
 * reductions. main() below reads the cases (inputs.txt), calls your functions and
 * prints the results file that `xent-ref verify --results` judges; you need not
 * change it. Compute in double: main rounds a float32 case's results to float once,
 * at the end. Until you write them, the functions return zeros and verify fails.
 */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum reduction { NONE, MEAN, SUM };

/* ---- your port: begin ---- */

/* The loss of cross_entropy(logits, target, weight=weight, ignore_index=ignore_index,
 * reduction=reduction).
 *   logits: n rows of c values, row-major;   target: n class indices;
 *   weight: c class weights, or NULL for all ones;
 *   out:    NONE: n losses (0 for an ignored row); MEAN, SUM: one number, out[0].
 * Remember: shift each row by its max before exp; a row whose target equals
 * ignore_index adds nothing, to the numerator or to the mean's denominator (the sum
 * of weight[target] over the kept rows). */
static void cross_entropy(int n, int c, const double *logits, const long *target,
                          const double *weight, long ignore_index, enum reduction reduction,
                          double *out)
{
    (void)c; (void)logits; (void)target; (void)weight; (void)ignore_index;
    for (int i = 0; i < (reduction == NONE ? n : 1); i++)
        out[i] = 0.0; /* your code here */
}

/* The gradient of that loss with respect to the logits, times grad_output.
 *   grad_output: NONE: n values, one per row; MEAN, SUM: one value;
 *   grad:        n rows of c values. */
static void cross_entropy_grad(int n, int c, const double *logits, const long *target,
                               const double *weight, long ignore_index,
                               enum reduction reduction, const double *grad_output,
                               double *grad)
{
    (void)logits; (void)target; (void)weight; (void)ignore_index; (void)reduction;
    (void)grad_output;
    for (int k = 0; k < n * c; k++)
        grad[k] = 0.0; /* your code here */
}

/* ---- your port: end ---- */

/* ------------------------------------------------------------------------------
 * The harness: reads inputs.txt (written by prepare.py), prints results JSON.
 *
 * inputs.txt is whitespace-separated tokens: "xent-ref-c-port 1", the number of
 * cases, then per case
 *   case ID DTYPE REDUCTION IGNORE_INDEX NDIM N C HAS_WEIGHT
 *   N*C logits, N targets, C weights (if HAS_WEIGHT), the grad_output values
 *   (N for reduction none, else 1)
 * with numbers as C's strtod reads them ("inf", "-inf" and "nan" included). A (C,)
 * input (NDIM 1) is one row, N = 1.
 * ---------------------------------------------------------------------------- */

static FILE *input;

static const char *token(void)
{
    static char buffer[512];
    if (fscanf(input, "%511s", buffer) != 1) {
        fprintf(stderr, "xent: unexpected end of the inputs file\n");
        exit(2);
    }
    return buffer;
}

static double number(void) { return strtod(token(), NULL); }

static double *numbers(int count)
{
    double *values = malloc(sizeof(double) * (count > 0 ? count : 1));
    for (int k = 0; k < count; k++)
        values[k] = number();
    return values;
}

/* One value as the results format spells it: shortest round trip for the dtype. */
static void print_value(double value, int is_float32)
{
    if (is_float32)
        value = (float)value; /* rounded once, here */
    if (isnan(value))
        printf("\"nan\"");
    else if (isinf(value))
        printf(value > 0 ? "\"inf\"" : "\"-inf\"");
    else if (is_float32)
        printf("%.9g", value);
    else
        printf("%.17g", value);
}

static void print_array(const char *dtype, int ndim, int n, int c, const double *values)
{
    int is_float32 = strcmp(dtype, "float32") == 0, count = ndim == 0 ? 1 : ndim == 1 ? n : n * c;
    printf("{\"dtype\": \"%s\", \"shape\": [", dtype);
    if (ndim == 1) printf("%d", n);
    if (ndim == 2) printf("%d, %d", n, c);
    printf("], \"data\": [");
    for (int k = 0; k < count; k++) {
        if (k) printf(", ");
        print_value(values[k], is_float32);
    }
    printf("]}");
}

static void run_case(int first)
{
    char id[512], dtype[16], name[16];
    long ignore_index;
    int ndim, n, c, has_weight;
    if (strcmp(token(), "case") != 0) { fprintf(stderr, "xent: bad inputs file\n"); exit(2); }
    strcpy(id, token());
    strcpy(dtype, token());
    strcpy(name, token());
    ignore_index = strtol(token(), NULL, 10);
    ndim = atoi(token()); n = atoi(token()); c = atoi(token()); has_weight = atoi(token());
    enum reduction reduction = strcmp(name, "none") == 0 ? NONE : strcmp(name, "sum") == 0 ? SUM : MEAN;
    double *logits = numbers(n * c);
    long *target = malloc(sizeof(long) * (n > 0 ? n : 1));
    for (int i = 0; i < n; i++) target[i] = strtol(token(), NULL, 10);
    double *weight = has_weight ? numbers(c) : NULL;
    int rows_out = reduction == NONE ? n : 1;
    double *grad_output = numbers(rows_out);
    double *loss = calloc(rows_out > 0 ? rows_out : 1, sizeof(double));
    double *grad = calloc(n * c > 0 ? n * c : 1, sizeof(double));
    cross_entropy(n, c, logits, target, weight, ignore_index, reduction, loss);
    cross_entropy_grad(n, c, logits, target, weight, ignore_index, reduction, grad_output, grad);
    printf("%s    {\"id\": \"%s\", \"loss\": ", first ? "" : ",\n", id);
    /* the loss of a (C,) input with reduction none is 0-d, like mean and sum */
    print_array(dtype, reduction == NONE && ndim == 2 ? 1 : 0, n, c, loss);
    printf(", \"grad\": ");
    if (ndim == 1) print_array(dtype, 1, c, 1, grad);
    else print_array(dtype, 2, n, c, grad);
    printf("}");
    free(logits); free(target); free(weight); free(grad_output); free(loss); free(grad);
}

int main(int argc, char **argv)
{
    if (argc != 2 || !(input = fopen(argv[1], "r"))) {
        fprintf(stderr, "usage: xent INPUTS.txt > results.json\n");
        return 2;
    }
    if (strcmp(token(), "xent-ref-c-port") != 0 || strcmp(token(), "1") != 0) {
        fprintf(stderr, "xent: %s is not an inputs file of prepare.py\n", argv[1]);
        return 2;
    }
    int cases = atoi(token());
    printf("{\"format\": \"xent-ref-results\", \"schema\": 1,\n");
    printf(" \"implementation\": \"exercises/c_port/xent.c\",\n \"results\": [\n");
    for (int k = 0; k < cases; k++)
        run_case(k == 0);
    printf("\n]}\n");
    fclose(input);
    return 0;
}
