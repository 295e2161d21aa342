// make site: MathJax 3's settings, read before assets/mathjax/tex-chtml-full.js (the site's own copy, unpacked
// from npm by .ci/site_pages.py). It typesets the notebooks' $...$, $$...$$, \(...\) and \[...\]; code and
// outputs (<pre>, <code>) are left alone.
window.MathJax = {
  tex: {
    inlineMath: [["$", "$"], ["\\(", "\\)"]],
    displayMath: [["$$", "$$"], ["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: {enableMenu: false},  // the menu would fetch more of MathJax on demand
};
