// The sharing formula (ledger/sharing.py, a contract) in exact integers (BigInt), and the assessment roll's leaf.
//
//   aid = Σ approved; fee = floor(aid × fee_bps / 10000); need = aid + fee − surplus_in
//   share = ceil(need / locked) (0 when need ≤ 0 or nobody is locked), capped per case, then by the annual cap;
//   operator_pays: subsidy = max(0, need − raised); pro_rata: what is available is split in proportion, floored;
//   a period the operator funds (funded_by "operator"): share 0, subsidy = max(0, need), everything funded.
//   Schema 3: the annual cap is each member's; a member's bundle takes the sum of the charges and the members
//   capped as signed (`charged`), within their bounds (chargesProblem), and recomputes the member's own charges
//   (yearCharges).

import { canonicalBytes } from "./jcs.js";

const floorDiv = (a, b) => {
  const q = a / b;
  return (a % b !== 0n) && ((a < 0n) !== (b < 0n)) ? q - 1n : q;
};
const ceilDiv = (a, b) => -floorDiv(-a, b);
const max = (a, b) => (a > b ? a : b);

/** Every term of the formula for one period, as BigInts (cap_applied and excess_policy as strings). */
export function assess(lockedMembers, cases, feeBps, surplusIn, perCaseCap, annualCapRemaining, excessPolicy,
  operatorFunded = false, charged = null) {
  const locked = BigInt(lockedMembers);
  const amounts = cases.map(([, amount]) => BigInt(amount));
  const aid = amounts.reduce((a, b) => a + b, 0n);
  const fee = floorDiv(aid * BigInt(feeBps), 10000n);
  const surplus = BigInt(surplusIn);
  const need = aid + fee - surplus;
  const uncapped = need > 0n && locked > 0n ? ceilDiv(need, locked) : 0n;
  let share = uncapped;
  let capApplied = "none";
  if (operatorFunded) share = 0n;
  const caseLimit = BigInt(perCaseCap) * BigInt(cases.length);
  if (share > caseLimit) [share, capApplied] = [caseLimit, "per_case"];
  let raised;
  let capped = 0n;
  if (charged !== null) {
    [raised, capped] = [BigInt(charged[0]), BigInt(charged[1])];
    if (capped > 0n && capApplied === "none") capApplied = "annual";
  } else {
    if (share > BigInt(annualCapRemaining)) [share, capApplied] = [BigInt(annualCapRemaining), "annual"];
    raised = share * locked;
  }
  let subsidy = 0n;
  let funded;
  let fundedFee;
  const operatorPays = operatorFunded || excessPolicy === "operator_pays";
  if (operatorPays || raised + surplus >= aid + fee || aid + fee === 0n) {
    subsidy = operatorPays ? max(0n, need - raised) : 0n;
    funded = amounts;
    fundedFee = fee;
  } else {
    const available = max(0n, raised + surplus);
    const total = aid + fee;
    funded = amounts.map((amount) => floorDiv(available * amount, total));
    fundedFee = floorDiv(available * fee, total);
  }
  const fundedAid = funded.reduce((a, b) => a + b, 0n);
  return {
    locked_members: locked, aid_fen: aid, fee_bps: BigInt(feeBps), fee_fen: fee, surplus_in_fen: surplus,
    need_fen: need, uncapped_share_fen: uncapped, per_case_cap_fen: BigInt(perCaseCap),
    annual_cap_remaining_fen: BigInt(annualCapRemaining), cap_applied: capApplied, share_fen: share,
    excess_policy: excessPolicy, subsidy_fen: subsidy, funded_aid_fen: fundedAid, funded_fee_fen: fundedFee,
    surplus_out_fen: raised + subsidy + surplus - fundedAid - fundedFee, funded, charged_fen: raised,
    members_capped: capped,
  };
}

/** What one locked member is charged (schema 3): the share, or what their charges of the plan year leave of the
 * annual cap when that is less. */
export function memberCharge(share, annualCap, chargedThisYear) {
  const left = BigInt(annualCap) - BigInt(chargedThisYear);
  const remaining = left > 0n ? left : 0n;
  return BigInt(share) < remaining ? BigInt(share) : remaining;
}

/** What makes a signed sum of charges impossible (schema 3), or null (ledger/sharing.py charges_problem). */
export function chargesProblem(shareFen, lockedMembers, chargedFen, membersCapped) {
  const [share, locked, charged, capped] = [shareFen, lockedMembers, chargedFen, membersCapped].map(BigInt);
  if (capped < 0n || capped > locked || (share === 0n && capped !== 0n)) {
    return `members_capped ${capped} is not between 0 and the ${locked} locked (0 at a 0 share)`;
  }
  const [low, high] = [share * (locked - capped), share * locked - capped];
  if (charged < low || charged > high) return `charged_fen ${charged} is not between ${low} and ${high}`;
  return null;
}

/** A member's own charge in each of their periods, in cutoff order, from [plan year, share, annual cap or -1]
 * (ledger/sharing.py year_charges). */
export function yearCharges(periods) {
  const totals = new Map();
  return periods.map(([year, share, cap]) => {
    const before = totals.get(year) ?? 0n;
    const charge = BigInt(cap) < 0n ? BigInt(share) : memberCharge(share, cap, before);
    totals.set(year, before + charge);
    return charge;
  });
}

/** One assessment-roll entry: the JCS bytes of {"period", "member", "amount"}. */
export function rollLeaf(period, member, amountFen) {
  return canonicalBytes({ period, member, amount: amountFen });
}
