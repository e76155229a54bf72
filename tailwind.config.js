/** @type {import('tailwindcss').Config} */
module.exports = {
  content: ["./views/**/*.templ", "./views/**/*.go", "./static/js/app.js"],
  // Dark mode follows the system unless the header's toggle chose one
  // (html.dark or html.light, kept in localStorage by static/js/app.js).
  darkMode: ["variant", ["@media (prefers-color-scheme: dark) { &:not(:where(.light, .light *)) }", "&:where(.dark, .dark *)"]],
  theme: { extend: {} },
  plugins: [require("@tailwindcss/forms")({ strategy: "class" })],
};
