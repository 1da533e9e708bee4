// Gaussian-process regression, kernels, and MAP hyper-parameter fitting (L-BFGS via Ceres).
#include "orchestrator/search/gp.h"

#include <ceres/gradient_problem.h>
#include <ceres/gradient_problem_solver.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace scaletune::search {
namespace {

constexpr double kSqrt3 = 1.7320508075688772;
constexpr double kRhoEps = 1e-12;  // inside the sqrt of the Matern distance, as the reference
constexpr double kLog2Pi = 1.8378770664093453;

// Weak priors on the log hyper-parameters: (mean, std). Length scales are centred on twice the
// search radius and may range over about two decades either way at one std.
struct Prior {
  double mean, std;
};
std::vector<Prior> priors(KernelKind kind, int dims, double radius) {
  std::vector<Prior> p;
  if (kind == KernelKind::kLinearMatern) {
    p.push_back({std::log(0.1), 2.0});  // linear variance: a trend, usually small on basic scale
    p.push_back({0.0, 1.5});            // matern variance
    for (int i = 0; i < dims; ++i) p.push_back({std::log(2 * radius), 1.5});
  } else {
    p.push_back({0.0, 1.5});
    p.push_back({0.0, 1.5});
  }
  p.push_back({std::log(0.01), 1.5});  // noise (reference: LogNormal(ln 0.01, 0.5))
  return p;
}

// Pairwise squared distances of scaled rows.
Eigen::MatrixXd sqdist(const Eigen::MatrixXd& A, const Eigen::MatrixXd& B) {
  Eigen::MatrixXd D = (-2.0 * A * B.transpose()).eval();
  D.colwise() += A.rowwise().squaredNorm();
  D.rowwise() += B.rowwise().squaredNorm().transpose();
  return D.cwiseMax(0.0);
}

Eigen::VectorXd inv_lengthscales(const GpHyper& h, int dims) {
  Eigen::VectorXd inv(dims);
  for (int i = 0; i < dims; ++i) inv[i] = std::exp(-h.theta[2 + i]);
  return inv;
}

}  // namespace

double GpHyper::noise() const { return std::exp(theta.back()); }

GpHyper GpHyper::reference(KernelKind kind, int dims, double radius) {
  GpHyper h;
  h.kind = kind;
  if (kind == KernelKind::kLinearMatern) {
    h.theta.assign(static_cast<std::size_t>(dims) + 3, 0.0);
    for (int i = 0; i < dims; ++i) h.theta[2 + i] = std::log(radius);
  } else {
    h.theta = {0.0, 0.0, 0.0};
  }
  h.theta.back() = std::log(0.01);
  return h;
}

Eigen::MatrixXd Gp::kernel(const GpHyper& h, const Eigen::MatrixXd& A, const Eigen::MatrixXd& B) {
  if (h.kind == KernelKind::kRbf) {
    const double inv_l = std::exp(-h.theta[1]);
    const Eigen::MatrixXd D = sqdist(A * inv_l, B * inv_l);
    return std::exp(h.theta[0]) * (-0.5 * D.array()).exp().matrix();
  }
  const int d = static_cast<int>(A.cols());
  const Eigen::VectorXd inv = inv_lengthscales(h, d);
  const Eigen::MatrixXd As = A * inv.asDiagonal(), Bs = B * inv.asDiagonal();
  const Eigen::ArrayXXd rho = (sqdist(As, Bs).array() + kRhoEps).sqrt();
  Eigen::MatrixXd K = std::exp(h.theta[0]) * (A * B.transpose());
  K.array() += std::exp(h.theta[1]) * (1 + kSqrt3 * rho) * (-kSqrt3 * rho).exp();
  return K;
}

Eigen::VectorXd Gp::kernel_diag(const GpHyper& h, const Eigen::MatrixXd& A) {
  if (h.kind == KernelKind::kRbf) return Eigen::VectorXd::Constant(A.rows(), std::exp(h.theta[0]));
  const double rho = std::sqrt(kRhoEps);
  const double matern = std::exp(h.theta[1]) * (1 + kSqrt3 * rho) * std::exp(-kSqrt3 * rho);
  return (std::exp(h.theta[0]) * A.rowwise().squaredNorm()).array() + matern;
}

void Gp::set_data(const Eigen::MatrixXd& X, const Eigen::VectorXd& y) {
  X_ = X;
  y_ = y;
  Eigen::MatrixXd K = kernel(hyper_, X, X);
  double extra = 0;
  for (int attempt = 0; attempt < 4; ++attempt) {
    Eigen::MatrixXd Ky = K;
    Ky.diagonal().array() += kGpJitter + hyper_.noise() + extra;
    Eigen::LLT<Eigen::MatrixXd> llt(Ky);
    if (llt.info() == Eigen::Success) {
      L_ = llt.matrixL();
      alpha_ = llt.solve(y);
      return;
    }
    extra = extra == 0 ? 1e-6 * (1 + K.diagonal().maxCoeff()) : extra * 100;
  }
  throw std::runtime_error(
      "GP kernel matrix is not positive definite (n=" + std::to_string(X.rows()) + ")");
}

void Gp::append(const Eigen::VectorXd& x, double y, double noise) {
  const Eigen::Index n = X_.rows();
  const Eigen::MatrixXd xr = x.transpose();
  const Eigen::VectorXd k = n ? Eigen::VectorXd(kernel(hyper_, X_, xr).col(0)) : Eigen::VectorXd();
  const double kxx = kernel_diag(hyper_, xr)[0] + noise;
  Eigen::VectorXd l = k;
  if (n) L_.triangularView<Eigen::Lower>().solveInPlace(l);
  const double d2 = kxx - l.squaredNorm();
  if (!(d2 > 0)) throw std::runtime_error("pending point makes the GP singular");
  Eigen::MatrixXd L(n + 1, n + 1);
  L.setZero();
  L.topLeftCorner(n, n) = L_;
  L.block(n, 0, 1, n) = l.transpose();
  L(n, n) = std::sqrt(d2);
  L_ = std::move(L);
  X_.conservativeResize(n + 1, x.size());
  X_.row(n) = x.transpose();
  y_.conservativeResize(n + 1);
  y_[n] = y;
  alpha_ = L_.triangularView<Eigen::Lower>().solve(y_);
  L_.triangularView<Eigen::Lower>().transpose().solveInPlace(alpha_);
}

void Gp::predict(const Eigen::MatrixXd& C, Eigen::VectorXd* mean, Eigen::VectorXd* var) const {
  if (y_.size() == 0) {
    if (mean) *mean = Eigen::VectorXd::Zero(C.rows());
    if (var) *var = kernel_diag(hyper_, C);
    return;
  }
  const Eigen::MatrixXd Ks = kernel(hyper_, X_, C);  // (n, m)
  if (mean) *mean = Ks.transpose() * alpha_;
  if (var) {
    const Eigen::MatrixXd V = L_.triangularView<Eigen::Lower>().solve(Ks);  // (n, m)
    *var = (kernel_diag(hyper_, C) - V.colwise().squaredNorm().transpose()).cwiseMax(0.0);
  }
}

double Gp::objective(const GpHyper& h, const Eigen::MatrixXd& X, const Eigen::VectorXd& y,
                     double radius, std::vector<double>* gradient) {
  const Eigen::Index n = X.rows();
  const int d = static_cast<int>(X.cols());
  const auto pri = priors(h.kind, d, radius);
  const std::size_t np = h.theta.size();
  double prior_term = 0;
  for (std::size_t j = 0; j < np; ++j) {
    const double z = (h.theta[j] - pri[j].mean) / pri[j].std;
    prior_term += 0.5 * z * z;
  }
  // Kernel pieces needed for the gradient.
  Eigen::MatrixXd K, Kpart0, Kpart1;  // linear part, matern (or rbf) part
  Eigen::ArrayXXd rho;
  if (h.kind == KernelKind::kRbf) {
    const double inv_l = std::exp(-h.theta[1]);
    const Eigen::MatrixXd D = sqdist(X * inv_l, X * inv_l);
    Kpart1 = std::exp(h.theta[0]) * (-0.5 * D.array()).exp().matrix();
    K = Kpart1;
    rho = D.array();  // scaled squared distances
  } else {
    const Eigen::VectorXd inv = inv_lengthscales(h, d);
    const Eigen::MatrixXd Xs = X * inv.asDiagonal();
    rho = (sqdist(Xs, Xs).array() + kRhoEps).sqrt();
    Kpart0 = std::exp(h.theta[0]) * (X * X.transpose());
    Kpart1 = (std::exp(h.theta[1]) * (1 + kSqrt3 * rho) * (-kSqrt3 * rho).exp()).matrix();
    K = Kpart0 + Kpart1;
  }
  const double noise = std::exp(h.theta.back());
  K.diagonal().array() += kGpJitter + noise;
  Eigen::LLT<Eigen::MatrixXd> llt(K);
  if (llt.info() != Eigen::Success) return std::numeric_limits<double>::infinity();
  const Eigen::VectorXd alpha = llt.solve(y);
  const Eigen::MatrixXd L = llt.matrixL();
  const double nlml = 0.5 * y.dot(alpha) + L.diagonal().array().log().sum() + 0.5 * n * kLog2Pi;
  if (gradient) {
    gradient->assign(np, 0.0);
    // d nlml / d theta_j = -1/2 tr((alpha alpha^T - K^-1) dK/dtheta_j)
    Eigen::MatrixXd W = llt.solve(Eigen::MatrixXd::Identity(n, n));
    W = alpha * alpha.transpose() - W;
    auto contract = [&](const Eigen::MatrixXd& dK) {
      return -0.5 * (W.array() * dK.array()).sum();
    };
    if (h.kind == KernelKind::kRbf) {
      (*gradient)[0] = contract(Kpart1);
      (*gradient)[1] = -0.5 * (W.array() * Kpart1.array() * rho).sum();  // d/dlog l: k * D
    } else {
      (*gradient)[0] = contract(Kpart0);
      (*gradient)[1] = contract(Kpart1);
      // d k / d log l_i = 3 sM2 exp(-sqrt3 rho) (x_i - z_i)^2 / l_i^2
      const Eigen::ArrayXXd M = W.array() * (3 * std::exp(h.theta[1]) * (-kSqrt3 * rho).exp());
      for (int i = 0; i < d; ++i) {
        const double inv_l = std::exp(-h.theta[2 + i]);
        const Eigen::VectorXd xi = X.col(i) * inv_l;
        Eigen::ArrayXXd D2 = (xi.replicate(1, n) - xi.transpose().replicate(n, 1)).array().square();
        (*gradient)[2 + i] = -0.5 * (M * D2).sum();
      }
    }
    (*gradient)[np - 1] = -0.5 * noise * W.trace();
    for (std::size_t j = 0; j < np; ++j)
      (*gradient)[j] += (h.theta[j] - pri[j].mean) / (pri[j].std * pri[j].std);
  }
  return nlml + prior_term;
}

namespace {
class MarginalLikelihood : public ceres::FirstOrderFunction {
 public:
  MarginalLikelihood(GpHyper start, const Eigen::MatrixXd& X, const Eigen::VectorXd& y,
                     double radius)
      : h_(std::move(start)), X_(X), y_(y), radius_(radius) {}
  bool Evaluate(const double* parameters, double* cost, double* gradient) const override {
    GpHyper h = h_;
    for (std::size_t j = 0; j < h.theta.size(); ++j) {
      if (!std::isfinite(parameters[j]) || std::fabs(parameters[j]) > 30) return false;
      h.theta[j] = parameters[j];
    }
    std::vector<double> g;
    *cost = Gp::objective(h, X_, y_, radius_, gradient ? &g : nullptr);
    if (!std::isfinite(*cost)) return false;
    if (gradient) std::copy(g.begin(), g.end(), gradient);
    return true;
  }
  int NumParameters() const override { return static_cast<int>(h_.theta.size()); }

 private:
  GpHyper h_;
  const Eigen::MatrixXd& X_;
  const Eigen::VectorXd& y_;
  double radius_;
};
}  // namespace

GpHyper Gp::fit(const GpHyper& start, const Eigen::MatrixXd& X, const Eigen::VectorXd& y,
                double radius, std::string* error) {
  std::vector<double> params = start.theta;
  ceres::GradientProblem problem(new MarginalLikelihood(start, X, y, radius));
  ceres::GradientProblemSolver::Options options;
  options.line_search_direction_type = ceres::LBFGS;
  options.max_num_iterations = 30;  // warm-started: later refits continue the descent
  options.logging_type = ceres::SILENT;
  options.minimizer_progress_to_stdout = false;
  options.function_tolerance = 1e-7;
  options.gradient_tolerance = 1e-6;
  ceres::GradientProblemSolver::Summary summary;
  ceres::Solve(options, problem, params.data(), &summary);
  GpHyper out = start;
  bool ok = summary.IsSolutionUsable();
  for (double p : params) ok = ok && std::isfinite(p);
  if (!ok) {
    if (error) *error = "hyper-parameter fit failed: " + summary.message;
    return start;
  }
  // Keep the result in a sane box (the priors make leaving it rare).
  for (double& p : params) p = std::clamp(p, -12.0, 8.0);
  out.theta = params;
  return out;
}

}  // namespace scaletune::search
