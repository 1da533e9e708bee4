// Zero-mean Gaussian-process regression in float64 (Eigen, LLT) with the kernels CARBS uses, and
// MAP fitting of the hyper-parameters by L-BFGS on the log marginal likelihood (Ceres).
//
//   linear+matern: k(x,z) = sL2 x.z + sM2 (1 + sqrt3 rho) exp(-sqrt3 rho),
//                  rho = sqrt(sum_i ((x_i - z_i) / l_i)^2 + 1e-12)      (ARD, uncentred linear)
//   rbf (1-D):     k(a,b) = s2 exp(-(a - b)^2 / (2 l^2))                   (the Pareto GP)
//   K_y = K + (jitter + noise) I;  predictions are the noiseless latent posterior.
#pragma once

#include <Eigen/Dense>
#include <string>
#include <vector>

namespace scaletune::search {

constexpr double kGpJitter = 1e-4;

enum class KernelKind { kLinearMatern, kRbf };

// Hyper-parameters as log values:
//   linear+matern: [log sL2, log sM2, log l_1 .. log l_d, log noise]
//   rbf:           [log s2, log l, log noise]
struct GpHyper {
  KernelKind kind = KernelKind::kLinearMatern;
  std::vector<double> theta;
  double noise() const;

  // The reference's effective values (carbs.md §12.1): sL2 = sM2 = 1, l = radius, noise 0.01;
  // rbf s2 = 1, l = 1, noise 0.01.
  static GpHyper reference(KernelKind kind, int dims, double radius);
};

class Gp {
 public:
  Gp() = default;
  explicit Gp(GpHyper hyper) : hyper_(std::move(hyper)) {}

  // X: (n, d) one point per row; y: (n). Throws std::runtime_error when K_y is not positive
  // definite even after raising the jitter.
  void set_data(const Eigen::MatrixXd& X, const Eigen::VectorXd& y);
  // Adds one point with only `noise` on the diagonal (rank-1 update of the Cholesky factor).
  void append(const Eigen::VectorXd& x, double y, double noise);

  // C: (m, d). mean (m); var (m) when not null (noiseless latent, clamped at 0).
  void predict(const Eigen::MatrixXd& C, Eigen::VectorXd* mean, Eigen::VectorXd* var) const;

  int size() const { return static_cast<int>(y_.size()); }
  const GpHyper& hyper() const { return hyper_; }

  // Kernel matrix between the rows of A and B.
  static Eigen::MatrixXd kernel(const GpHyper& h, const Eigen::MatrixXd& A,
                                const Eigen::MatrixXd& B);
  static Eigen::VectorXd kernel_diag(const GpHyper& h, const Eigen::MatrixXd& A);

  // MAP estimate of the hyper-parameters, starting at `start` (warm start). Weak Gaussian priors
  // on the log values keep a few observations from producing extreme length scales. Returns
  // `start` unchanged (and sets *error) when the optimizer fails.
  static GpHyper fit(const GpHyper& start, const Eigen::MatrixXd& X, const Eigen::VectorXd& y,
                     double radius, std::string* error);
  // Negative log posterior of the hyper-parameters (up to a constant) and its gradient.
  static double objective(const GpHyper& h, const Eigen::MatrixXd& X, const Eigen::VectorXd& y,
                          double radius, std::vector<double>* gradient);

 private:
  GpHyper hyper_;
  Eigen::MatrixXd X_;
  Eigen::VectorXd y_;
  Eigen::MatrixXd L_;  // lower Cholesky factor of K_y
  Eigen::VectorXd alpha_;
};

}  // namespace scaletune::search
